"""Evaluation tables: ``<out>/<suite>.json`` (machine-readable) and ``<out>/<suite>.md`` (rendered from it).

Each run merges its models into the suite's table by name, so baselines and learned models can be
evaluated in separate runs, as long as they were evaluated on the same items: a table made from
another manifest (by content digest), split, label or P-test margin is replaced, with a warning.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.eval.protocol import Assessment
from common.result import json_safe

log = logging.getLogger(__name__)

SAME_ITEMS = ("sha256", "split", "label", "margin")  # rows agreeing on these were measured on the same items
MAX_FAILURES = 20  # failure messages kept per model in the JSON table


def model_entry(name: str, mode: str, higher_better: bool, weights_sha256: str | None, a: Assessment,
                failures: Sequence[str], command: str, when: str) -> dict[str, Any]:
    """One model's row of the table: its figures, what failed, and the command that produced it."""
    c = a.corr
    notes = list(a.notes)
    if failures:
        rows = "1 row" if len(failures) == 1 else f"{len(failures)} rows"
        notes.append(f"{rows} failed to score and are left out, e.g. {failures[0]}")
    return {
        "model": name, "mode": mode, "higher_better": higher_better, "weights_sha256": weights_sha256,
        "n": a.n, "failed": len(failures), "n_label": c.n,
        "srcc": c.srcc, "krcc": c.krcc, "plcc": c.plcc, "rmse": c.rmse, "mapping": c.mapping,
        "d_auc": a.d_auc, "d_by_content": a.d_by_content, "d_by_kind": a.d_by_kind,
        "d_by_level": a.d_by_level, "l_test": a.l.value, "l_lists": a.l.lists,
        "l_flat": a.l.flat, "l_by_kind": a.l.by_kind,
        "p_test": a.p.value, "p_pairs": a.p.pairs, "auc": a.binary, "srcc_labels": a.label_srcc,
        "notes": notes, "failures": list(failures[:MAX_FAILURES]), "command": command, "evaluated_at": when,
    }


def _previous(path: Path, about: dict[str, Any]) -> list[dict[str, Any]]:
    """The model rows of an existing table that were measured on the same items as ``about`` describes."""
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        old, rows = doc["set"], doc["models"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        log.warning("cannot read the previous table %s (%s); writing a new one", path, exc)
        return []
    if any(old.get(k) != about[k] for k in SAME_ITEMS):
        was = ", ".join(f"{k}={old.get(k)}" for k in SAME_ITEMS if old.get(k) != about[k])
        log.warning("%s was measured on other items (%s); its rows for %s are replaced", path, was,
                    ", ".join(r.get("model", "?") for r in rows) or "no models")
        return []
    return rows


def write_tables(out_dir: Path, suite: str, about: dict[str, Any], entries: Sequence[dict[str, Any]],
                 when: str) -> tuple[dict[str, Any], str]:
    """Merge ``entries`` into ``<out_dir>/<suite>.json`` by model name and rewrite it and the Markdown table.

    ``about`` describes the evaluated items (manifest, digest, split, label, margin, counts).
    Returns the merged document and its Markdown.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{suite}.json"
    rows = _previous(json_path, about)
    for entry in entries:
        names = [r.get("model") for r in rows]
        if entry["model"] in names:
            rows[names.index(entry["model"])] = entry
        else:
            rows.append(entry)
    doc = json_safe({"suite": suite, "updated": when, "set": about, "models": rows})
    text = markdown(doc)
    json_path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (out_dir / f"{suite}.md").write_text(text, encoding="utf-8")
    return doc, text


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) or "none"


def _part_order(part: str) -> tuple[int, int, str]:
    """Numbered parts (levels) in numeric order first, then names in alphabetical order."""
    return (0, int(part), "") if part.isdigit() else (1, 0, part)


def _breakdown(rows: Sequence[dict[str, Any]], key: str, what: str) -> list[str]:
    """A table of one per-part figure (``key``: part -> value in each model row), parts down, models across."""
    models = [r for r in rows if r.get(key)]
    parts = sorted({p for r in models for p in r[key]}, key=_part_order)
    if not parts:
        return []
    return ["", f"| {what} | " + " | ".join(r["model"] for r in models) + " |",
            "|---|" + "---:|" * len(models),
            *(f"| {p} | " + " | ".join(_num(r[key].get(p)) for r in models) + " |" for p in parts)]


def markdown(doc: dict[str, Any]) -> str:
    """The Markdown page of a table document: what was measured, by which commands, the table, how to read it."""
    s, rows = doc["set"], doc["models"]
    binary = sorted({k for r in rows for k in r.get("auc", {})})
    others = sorted({k for r in rows for k in r.get("srcc_labels", {})})
    runs: dict[str, list[str]] = {}
    for r in rows:
        runs.setdefault(r["command"], []).append(f"{r['model']} ({r['evaluated_at']})")
    label, margin = s["label"], s["margin"]
    lines = [
        f"# Evaluation: {doc['suite']}", "",
        f"Written by `dqa eval` (`common/eval`); regenerate it rather than edit it. Updated {doc['updated']}.", "",
        f"- Manifest: `{s['manifest']}` (sha256 `{s['sha256'][:12]}`, media {s.get('media') or 'unknown'}), "
        f"split `{s['split']}`: {s['rows']} rows ({s['pristine']} pristine, {s['rows'] - s['pristine']} distorted) "
        f"from {s['contents']} contents.",
        f"- Primary label `{label}`; binary labels {_names(s['binary_labels'])}; "
        f"other quality labels {_names(s['other_labels'])}. P-test margin {margin:g} label points.",
        "- Produced by:",
        *(f"  - `{cmd}`: {', '.join(models)}" for cmd, models in runs.items()),
        "",
        "| model | mode | n | failed | SRCC | KRCC | PLCC | RMSE | D-test AUC | L-test (lists) | P-test (pairs) |"
        + "".join(f" AUC {b} |" for b in binary) + "".join(f" SRCC {o} |" for o in others),
        "|---|---|" + "---:|" * (9 + len(binary) + len(others)),
    ]
    for r in rows:
        cells = [r["model"], r["mode"], str(r["n"]), str(r["failed"]), _num(r["srcc"]), _num(r["krcc"]),
                 _num(r["plcc"]), _num(r["rmse"], 2), _num(r["d_auc"]), f"{_num(r['l_test'])} ({r['l_lists']})",
                 f"{_num(r['p_test'])} ({r['p_pairs']})"]
        cells += [_num(r.get("auc", {}).get(b)) for b in binary] + [_num(r.get("srcc_labels", {}).get(o)) for o in others]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "How to read it: scores are oriented so that higher is better (lower-is-better metrics are negated), "
        f"so every column but RMSE is higher for a better model. SRCC, KRCC, PLCC and RMSE are against `{label}` "
        "over the rows that have it; PLCC and RMSE (in label points) after the VQEG 4-parameter logistic fitted "
        "per model. D-test: AUC of pristine over distorted rows. L-test: mean SRCC with severity within each "
        "content x degradation list of 3 or more levels, the pristine at level 0 (Ma et al., Waterloo Exploration "
        f"Database, IEEE TIP 2017). P-test: share of pairs of distorted rows of one content whose `{label}` differs "
        f"by {margin:g} or more that the model orders the same way, ties counting half. AUC of a binary label: "
        "rows labelled 1 over rows labelled 0. Full-reference models score pristine rows against themselves, "
        "so their D-test is about 1 by construction. Rows that failed to score are left out.",
    ]
    notes = [f"- {r['model']}: {note}" for r in rows for note in r.get("notes", [])]
    if notes:
        lines += ["", "Notes:", "", *notes]
    by_kind = _breakdown(rows, "l_by_kind", "L-test by degradation")
    by_content = _breakdown(rows, "d_by_content", "D-test part of each pristine content")
    d_kind = _breakdown(rows, "d_by_kind", "D-test by degradation")
    d_level = _breakdown(rows, "d_by_level", "D-test by level")
    if by_kind or by_content or d_kind or d_level:
        lines += ["", "## Breakdowns", "",
                  "L-test by degradation: the mean over the lists of each kind. D-test part of each pristine "
                  "content: the share of all distorted rows (of every content) that its pristine row outscores; "
                  "the D-test AUC is their mean, so a low part marks a source the model does not see as pristine. "
                  "D-test by degradation and by level: the AUC of all pristine rows over the distorted rows of that "
                  "kind (every level) or of that level (every kind), so a low value marks damage the model does not "
                  "tell from a pristine source's own quality.",
                  *by_kind, *by_content, *d_kind, *d_level]
    return "\n".join(lines) + "\n"

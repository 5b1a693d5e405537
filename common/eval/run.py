"""``dqa eval``: score a manifest's rows with each model through the runner, then measure and tabulate.

Each model's scores are cached in the set folder, ``<set>/scores/<model>.jsonl`` (``<model>-<sha>``
for learned weights, so other weights never reuse them), written by the runner's JSONL writer as
each file finishes. A re-run, or a run after an interruption, scores only the rows not there yet;
rows that failed are tried again, and a file that still fails is reported and left out.
"""
from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from common.data.manifest import Item, Manifest, read_manifest
from common.eval.protocol import DEFAULT_MARGIN, assess
from common.eval.report import model_entry, write_tables
from common.media import parse_sampler
from common.model import Model
from common.output import file_key, open_writer, read_jsonl_rows
from common.registry import get_spec, load_model
from common.result import Result
from common.runner import Job, ScoreOptions, run_jobs

log = logging.getLogger(__name__)

VIDEO_SAMPLER = "uniform:8"  # frames scored per clip of a video set, spread over the clip

# The baselines `dqa eval` runs when no models are named (DESIGN section 6): BRISQUE and NIQE everywhere,
# plus a high-frequency-energy baseline for 4K. VMAF is not a default: for compressed video it is the
# teacher, whose labels every model is correlated with.
DEFAULT_MODELS = ("niqe", "brisque")
SUITE_MODELS = {"uhd": ("hf-energy",)}


def default_models(suite: str) -> list[str]:
    """The baseline models evaluated for ``suite`` when none are named."""
    return [*DEFAULT_MODELS, *SUITE_MODELS.get(suite, ())]


def cache_path(manifest: Manifest, model: Model, sampler: str | None = None) -> Path:
    """Where a model's scores of a set's files are kept: ``<set>/scores/<model>[-<weights sha>][@<sampler>].jsonl``."""
    name = model.name if model.weights_sha256 is None else f"{model.name}-{model.weights_sha256[:12]}"
    if sampler:
        name += "@" + re.sub(r"[^A-Za-z0-9.]+", "-", sampler)
    return manifest.root / "scores" / f"{name}.jsonl"


def build_jobs(model: Model, items: Sequence[Item]) -> dict[str, Job]:
    """One runner job per distinct file, keyed by :func:`file_key`.

    Full-reference models get each distorted row's ``ref``, and score a pristine row against itself,
    so that every model is measured on the same rows.
    """
    jobs: dict[str, Job] = {}
    for it in items:
        key = file_key(str(it.path))
        if key in jobs:
            continue
        ref, error = None, None
        if model.mode == "FR":
            ref = it.path if it.pristine else it.ref
            if ref is None:
                error = f"{key}: the manifest gives no ref for this {it.kind} row; {model.name} is full-reference"
        jobs[key] = Job(len(jobs), key, it.path, ref, error)
    return jobs


def _cached(path: Path) -> dict[str, Result]:
    """The rows of a cache file by file key."""
    return {file_key(row["path"]): Result.from_dict(row) for _, row in read_jsonl_rows(path)}


def score_items(model: Model, items: Sequence[Item], cache: Path, opts: ScoreOptions,
                rescore: bool = False) -> list[Result]:
    """Every row's Result, scoring only the files not yet in ``cache`` (all of them with ``rescore``)."""
    jobs = build_jobs(model, items)
    writer = open_writer(cache, "jsonl", resume=not rescore, model=model.name)
    try:
        todo = [job for key, job in jobs.items() if key not in writer.done]
        log.info("%s: %d of %d files cached in %s; scoring %d", model.name, len(jobs) - len(todo), len(jobs),
                 cache, len(todo))
        run_jobs(model, todo, opts, writer)
    finally:
        writer.close()
    rows = _cached(cache)
    keys = [file_key(str(it.path)) for it in items]
    return [rows.get(k) or Result(k, None, error=f"{k}: not in {cache} after scoring", model=model.name) for k in keys]


def _about(manifest: Manifest, shown: str, items: Sequence[Item], split: str, label: str, margin: float,
           binary: Sequence[str], others: Sequence[str]) -> dict[str, Any]:
    """What a table's rows were measured on; ``report.SAME_ITEMS`` of it decide whether runs merge."""
    return {"manifest": shown, "sha256": manifest.sha256, "media": manifest.media, "split": split,
            "label": label, "margin": margin, "rows": len(items), "pristine": sum(it.pristine for it in items),
            "contents": len({it.content for it in items}), "binary_labels": list(binary), "other_labels": list(others)}


def shown_path(path: Path) -> str:
    """The manifest path as the table prints it: under ``$DQA_DATA`` when it is there, so tables are portable."""
    from common.data.sources import data_dir

    try:
        return "$DQA_DATA/" + path.resolve().relative_to(data_dir().resolve()).as_posix()
    except ValueError:
        return str(path)


@dataclass
class Evaluation:
    """The outcome of :func:`evaluate`: the merged table, its Markdown, and how many rows failed now."""

    table: dict[str, Any]
    markdown: str
    json_path: Path
    md_path: Path
    failed: int


def evaluate(manifest: str | Path, models: Sequence[str] | None = None, split: str = "test",
             label: str | None = None, out_dir: str | Path = Path("docs/eval"), suite: str | None = None,
             margin: float = DEFAULT_MARGIN, device: str = "auto", workers: int = 2, progress: bool = True,
             rescore: bool = False, resize_ref: bool = False, sampler: str | None = None) -> Evaluation:
    """Score the rows of ``split`` with each of ``models`` and write ``<out_dir>/<suite>.{md,json}``.

    ``manifest`` is a set folder or its ``manifest.csv``; ``suite`` and ``label`` default to the
    sidecar's; ``models`` default to :func:`default_models`. Every name and label is checked before
    anything is scored. ``resize_ref`` lets full-reference models score rows smaller than their
    reference (resolution ladders) against the reference scaled down, as ``dqa score --resize-ref``.
    ``sampler`` picks the video frames (default :data:`VIDEO_SAMPLER` for video sets); models that
    need every frame (VMAF) always get all of them.
    """
    man = read_manifest(manifest)
    suite = suite or man.suite
    if not suite:
        raise ValueError(f"{man.csv}: no manifest.json names the suite; pass --suite")
    if man.suite and suite != man.suite:
        log.warning("the manifest is of suite %r; the table is written as %r", man.suite, suite)
    label = label or man.meta.get("label")
    if not label:
        raise ValueError(f"{man.csv}: no manifest.json names the primary label; pass --label")
    if label not in man.labels:
        raise ValueError(f"unknown label {label!r}; the manifest has {', '.join(man.labels) or 'no labels'}")
    items = man.select(split)
    names = list(dict.fromkeys(models)) if models else default_models(suite)
    for spec in map(get_spec, names):  # unknown names fail here, before any scoring
        if man.media and man.media not in spec.inputs:
            raise ValueError(f"model {spec.name} scores {' and '.join(spec.inputs)} only; this manifest holds {man.media}")
    shown = shown_path(man.csv.parent)
    command = shlex.join(["dqa", "eval", "--suite", suite, "--manifest", shown, "--models", *names,
                          "--split", split, "--label", label, "--margin", f"{margin:g}"])
    sampler = sampler or (VIDEO_SAMPLER if man.media == "video" else None)
    if sampler:
        parse_sampler(sampler)  # a bad spec fails before any scoring
    opts = ScoreOptions(workers=workers, progress=progress, resize_ref=resize_ref)
    scored = []
    for name in names:
        model = load_model(name, device=device)
        frames = None if model.consecutive_frames else sampler
        results = score_items(model, items, cache_path(man, model, frames),
                              replace(opts, sampler=parse_sampler(frames) if frames else None), rescore)
        scores = np.array([np.nan if r.score is None or not r.ok else r.score for r in results], dtype=np.float64)
        failures = list(dict.fromkeys(r.error or f"{r.path}: no finite score"
                                      for r, s in zip(results, scores) if not np.isfinite(s)))
        scored.append(Scored(name, model.mode, model.higher_better, model.weights_sha256, scores, failures))
    return tabulate(man, items, scored, split, label, margin, Path(out_dir), suite, command)


@dataclass
class Scored:
    """One model's raw scores of a list of manifest rows (NaN: failed) and the messages of the failures."""

    name: str
    mode: str
    higher_better: bool
    weights_sha256: str | None
    scores: np.ndarray
    failures: list[str]


def tabulate(man: Manifest, items: Sequence[Item], scored: Sequence[Scored], split: str, label: str, margin: float,
             out_dir: Path, suite: str, command: str) -> Evaluation:
    """Assess each model's scores of ``items`` (rows of ``split`` of ``man``) and merge them into the suite's table."""
    binary = [n for n in man.binary_labels() if n != label]
    others = [n for n in man.labels if n not in binary and n != label]
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = [model_entry(m.name, m.mode, m.higher_better, m.weights_sha256,
                           assess(items, m.scores, m.higher_better, label, binary, others, margin),
                           m.failures, command, when) for m in scored]
    about = _about(man, shown_path(man.csv.parent), items, split, label, margin, binary, others)
    table, text = write_tables(out_dir, suite, about, entries, when)
    return Evaluation(table, text, out_dir / f"{suite}.json", out_dir / f"{suite}.md",
                      sum(len(m.failures) for m in scored))

"""``python -m suites.video.report``: the video models' acceptance figures, from the ``dqa eval`` tables.

Reads ``docs/eval/{ugc,pgc,game}.json`` (written by ``dqa eval`` on the held-out test split of each set), writes
``docs/eval/video.md`` - for each model the figure it is judged on, its goal, and the baselines on the same
items - and records the figures in the weights manifest (``measured.held_out``) of each model whose evaluated
weights are the ones listed there. A goal whose table or model row is missing is listed as not evaluated.

Beside the VMAF goals it gives an *encoding oracle*, read from the set itself when ``$DQA_DATA/sets/SET`` is
there: each test clip predicted by the mean VMAF of the training clips made with the same codec and rung. It
is what knowing exactly how a clip was encoded, and nothing about its content, is worth. From the pgc set it also
measures how bits per pixel fall with the frame size along the training contents' resolution ladders, the basis
of :data:`common.metrics.cues.BPP_SIZE_EXPONENT`.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.data.manifest import read_manifest
from common.data.sources import data_dir
from common.eval.stats import srcc
from common.media import bitstream_stats
from common.metrics.cues import BPP_SIZE_EXPONENT
from common.weights import load_manifest, record_measured

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Goal:
    """One acceptance figure: the model, its table, the column and the least value."""

    model: str
    table: str
    column: str
    least: float
    what: str


GOALS = (Goal("pgc", "pgc", "srcc", 0.90, "SRCC with VMAF"),
         Goal("pgc-fr", "pgc", "srcc", 0.95, "SRCC with VMAF"),
         Goal("game", "game", "srcc", 0.90, "SRCC with VMAF on held-out CGI and art"),
         Goal("ugc", "ugc", "l_test", 0.90, "L-test (severity order)"),
         Goal("ugc", "ugc", "d_auc", 0.95, "D-test AUC (pristine vs distorted)"))
BASELINES = ("niqe", "brisque", "psnr", "ssim")


def _rows(folder: Path, table: str) -> tuple[dict, dict[str, dict]]:
    path = folder / f"{table}.json"
    if not path.is_file():
        log.warning("%s not found: run `dqa eval --manifest $DQA_DATA/sets/%s --models ...`", path, table)
        return {}, {}
    data = json.loads(path.read_text())
    return data, {m["model"]: m for m in data["models"]}


def encoding_oracle(set_dir: Path, label: str = "vmaf") -> float | None:
    """SRCC on the test split of predicting each clip by the mean ``label`` of the training clips with the same
    codec and rung (``kind``, ``level``); None when the set has no such pairs."""
    items = read_manifest(set_dir).items
    means: dict[tuple[str, int], list[float]] = defaultdict(list)
    for i in items:
        if i.split == "train" and label in i.labels:
            means[(i.kind, i.level)].append(i.labels[label])
    test = [i for i in items if i.split == "test" and label in i.labels and (i.kind, i.level) in means]
    if len(test) < 3:
        return None
    return srcc(np.array([np.mean(means[(i.kind, i.level)]) for i in test]), np.array([i.labels[label] for i in test]))


def ladder_bpp_slopes(set_dir: Path) -> np.ndarray:
    """Per training content, the slope of log2 bits per pixel over log2 coded pixels along its resolution ladder
    (``ladder`` rungs: one CRF, falling sizes); demuxing only."""
    rungs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for i in read_manifest(set_dir).items:
        stats = bitstream_stats(i.path) if i.split == "train" and i.kind == "ladder" else None
        if stats is not None:
            rungs[i.content].append((np.log2(stats.width * stats.height), np.log2(stats.bits_per_pixel())))
    return np.array([np.polyfit(*np.array(r).T, 1)[0] for r in rungs.values() if len(r) >= 3])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report(folder: Path = Path("docs/eval"), record: bool = True) -> str:
    """Write ``folder/video.md`` and (``record``) the manifest figures; return the markdown."""
    tables = {t: _rows(folder, t) for t in sorted({g.table for g in GOALS})}
    manifest = load_manifest()
    sets = {t: data_dir() / "sets" / t for t in {g.table for g in GOALS if g.column == "srcc"}}  # the VMAF sets
    oracles = {t: encoding_oracle(d) if (d / "manifest.csv").is_file() else None for t, d in sets.items()}
    lines = ["# Video models: acceptance figures", "",
             "Written by `python -m suites.video.report` from the `dqa eval` tables of the held-out test split "
             "(`docs/eval/ugc.md`, `pgc.md`, `game.md`, where every column and the commands are); regenerate it "
             "rather than edit it. Baselines are scored on the same items.", "",
             "| model | figure | goal | value | met | " + " | ".join(BASELINES) + " | encoding oracle "
             "| test items (contents) |",
             "|---|---|---:|---:|:-:|" + "---:|" * (len(BASELINES) + 1) + "---|"]
    measured: dict[str, dict] = {}
    for g in GOALS:
        data, rows = tables[g.table]
        row = rows.get(g.model)
        if row is None:
            lines.append(f"| `{g.model}` | {g.what} | {g.least:.2f} | not evaluated | no |" + " |" * len(BASELINES)
                         + " | |")
            continue
        value = row[g.column]
        base = [_fmt(rows[b][g.column]) if b in rows and (b not in ("psnr", "ssim") or g.model == "pgc-fr") else ""
                for b in BASELINES]
        s = data["set"]
        lines.append(f"| `{g.model}` | {g.what} | {g.least:.2f} | {_fmt(value)} | "
                     f"{'yes' if value is not None and value >= g.least else 'no'} | " + " | ".join(base)
                     + f" | {_fmt(oracles.get(g.table)) if g.column == 'srcc' else ''}"
                     + f" | {row['n']} of {s['rows']} ({s['contents']}) |")
        entry = measured.setdefault(g.model, {"set": s["manifest"], "set_sha256": s["sha256"], "label": s["label"],
                                              "weights_sha256": row["weights_sha256"], "command": row["command"],
                                              "rows": row["n"], "contents": s["contents"]})
        entry.update({k: row[k] for k in ("srcc", "plcc", "krcc", "rmse", "d_auc", "l_test", "p_test")})
    lines += ["", "PSNR and SSIM are full-reference, so they appear beside `pgc-fr` only. The `ugc` set's label is "
              "the fused full-reference teacher; `pgc` and `game` are labelled by VMAF. The encoding oracle predicts "
              "each test clip by the mean VMAF of the training clips made with the same codec and rung: what knowing "
              "exactly how a clip was encoded, and nothing about its content, is worth.", ""]
    if (sets["pgc"] / "manifest.csv").is_file():
        slopes = -ladder_bpp_slopes(sets["pgc"])
        lo, mid, hi = np.percentile(slopes, [25, 50, 75])
        lines += [f"Bits per pixel along the resolution ladders (one CRF) of the {len(slopes)} pgc training contents "
                  f"fall as pixels^-{mid:.2f} (median; quartiles {lo:.2f} and {hi:.2f}): the bitstream cues scale bits "
                  f"per pixel by pixels^{BPP_SIZE_EXPONENT} to their 640x360 equivalent "
                  "(`common.metrics.cues.BPP_SIZE_EXPONENT`).", ""]
    text = "\n".join(lines)
    (folder / "video.md").write_text(text)
    if record:
        for name, figures in measured.items():
            entry = manifest.get(f"video-{name}")
            if entry and entry.get("sha256") == figures["weights_sha256"]:
                record_measured(f"video-{name}", {"held_out": figures})
            else:
                log.warning("video-%s: the evaluated weights are not the manifest's; figures not recorded", name)
    return text


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folder", default="docs/eval", help="folder of the dqa eval tables (default docs/eval)")
    p.add_argument("--no-record", action="store_true", help="do not write the figures into weights/manifest.json")
    a = p.parse_args(argv)
    print(report(Path(a.folder), record=not a.no_record))


if __name__ == "__main__":
    main()

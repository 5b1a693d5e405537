"""``python -m suites.video.sizecheck``: how a compression model holds at a frame size its set does not have.

The pgc and game sets' clips are at most 360 lines high. This check makes, from the set's held-out images that are
at least ``--lines`` high, 1-s pans at that height, and, as the set builder does, encodes each losslessly, then
on a ladder of H.264, HEVC and VP9 rungs (the set's graded levels) from the decoded pan, labels each encode with
VMAF against the lossless pan at the same size, and scores it with the model. It prints, and writes to
``--out``, every encode's VMAF and score, the SRCC and the mean (signed and absolute) error in VMAF points.
Nothing here is trained on: it only reads.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.data.build import item_seed, load_source
from common.data.build_video import decode, make_item, vmaf_label
from common.data.manifest import read_manifest
from common.data.sources import data_dir
from common.data.video_degrade import encode
from common.eval.stats import srcc
from common.media import IMAGE_EXTS
from common.registry import load_model
from suites.video.data import clip_or_pan

log = logging.getLogger(__name__)

RUNGS = tuple(("h264", level) for level in range(1, 6)) + (("h265", 3), ("h265", 5), ("vp9", 4))


@dataclass(frozen=True)
class Encode:
    """One encode of a pan: its content, codec and level, VMAF against the lossless pan, and the model's score."""

    content: str
    codec: str
    level: int
    vmaf: float
    score: float


def held_out_images(set_dir: Path, lines: int, count: int) -> list[Path]:
    """The first ``count`` held-out images of a set (its manifest's ``held_out`` list) at least ``lines`` high: photos
    for pgc, CGI and art for game."""
    held = read_manifest(set_dir).meta.get("held_out") or []
    images = [data_dir() / p for p in held if Path(p).suffix.lower() in IMAGE_EXTS and (data_dir() / p).is_file()]
    tall = [p for p in images if min(load_source(p).shape[:2]) >= lines]
    if not tall:
        raise ValueError(f"{set_dir}: no held-out image is {lines} lines high; fetch the data (`dqa data fetch`) or "
                         "ask for fewer --lines")
    return tall[:count]


def check(model_name: str, set_dir: Path, lines: int, count: int, work: Path,
          rungs: tuple[tuple[str, int], ...] = RUNGS) -> list[Encode]:
    """Encode and score the pans (see the module); the encodes are written to ``work``."""
    model = load_model(model_name, device="cpu")
    make = clip_or_pan(1.0, lines)
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for k, image in enumerate(held_out_images(set_dir, lines, count)):
        frames, fps = make(image)
        ref = encode(frames, work / f"{k}_ref.mp4", "h264", crf=0, fps=fps)  # as the set builder: lossless, then
        pristine = decode(ref)  # every rung encoded from the decoded pristine clip
        content = str(image.relative_to(data_dir()))
        for codec, level in rungs:
            clip = make_item(codec, pristine, level, item_seed(content, codec, level),
                             work / f"{k}_{codec}{level}.mp4", fps)
            row = Encode(content, codec, level, vmaf_label(clip, ref, (pristine.shape[2], pristine.shape[1])),
                         model.score(clip).score)
            log.info("%s %s %d: VMAF %.1f, %s %.1f", row.content, codec, level, row.vmaf, model_name, row.score)
            out.append(row)
    return out


def report(rows: list[Encode], model_name: str, lines: int, command: str) -> str:
    """A Markdown page: every encode, then SRCC and the mean errors."""
    vmaf, score = np.array([r.vmaf for r in rows]), np.array([r.score for r in rows])
    err = score - vmaf
    lines_md = [f"# `{model_name}` at {lines} lines", "",
                f"Written by `{command}`; regenerate it rather than edit it. Pans of the set's held-out images at "
                f"{lines} lines (the set's clips are at most 360), each encode labelled by VMAF against the lossless "
                "pan at the same size (see `suites/video/sizecheck.py`).", "",
                f"SRCC {srcc(score, vmaf):.3f}; mean error {err.mean():+.1f} VMAF points (score minus VMAF); "
                f"mean absolute error {np.abs(err).mean():.1f}; {len(rows)} encodes.", "",
                "| image | codec | level | VMAF | score |", "|---|---|---:|---:|---:|"]
    lines_md += [f"| {r.content} | {r.codec} | {r.level} | {r.vmaf:.1f} | {r.score:.1f} |" for r in rows]
    return "\n".join(lines_md) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m suites.video.sizecheck", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example: python -m suites.video.sizecheck --model pgc --lines 720")
    p.add_argument("--model", default="pgc", choices=("pgc", "game"), help="the model to check (default pgc)")
    p.add_argument("--lines", type=int, default=720, help="pan height in lines (default 720)")
    p.add_argument("--contents", type=int, default=5, help="held-out images to use (default 5)")
    p.add_argument("--work", type=Path, help="folder for the encodes (default $DQA_DATA/runs/sizecheck-LINES)")
    p.add_argument("--out", type=Path, help="Markdown page to write (default docs/eval/MODEL-LINESp.md)")
    args = p.parse_args(argv)
    if args.lines < 64 or args.contents < 1:
        p.error("--lines must be at least 64 and --contents at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    set_dir = data_dir() / "sets" / ("game" if args.model == "game" else "pgc")
    rows = check(args.model, set_dir, args.lines, args.contents,
                 args.work or data_dir() / "runs" / f"sizecheck-{args.lines}")
    command = f"python -m suites.video.sizecheck --model {args.model} --lines {args.lines} --contents {args.contents}"
    page = report(rows, args.model, args.lines, command)
    out = args.out or Path(__file__).resolve().parents[2] / "docs" / "eval" / f"{args.model}-{args.lines}p.md"
    out.write_text(page, encoding="utf-8")
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

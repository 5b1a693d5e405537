"""Dataset builders: pristine content + graded degradations + teacher labels -> a manifest per suite.

``dqa data build --suite S [--small]`` runs the suite's :class:`Recipe` (each suite declares its
own in ``suites/<suite>/data.py``) over the catalogued content and writes, under
``$DQA_DATA/sets/<suite>[-small]/``, the media files, ``manifest.csv`` (path, ref, content, kind,
level, labels, split; paths relative to the set folder) and ``manifest.json`` (suite, primary
label, recipe, held-out list). Splits are by source content: a content and everything made from
it are all ``train`` or all ``test``, and the test contents are the fixed list in ``held_out.txt``.

Each content is built by one worker process and its rows land in ``parts/`` as soon as it is
done, so an interrupted build resumes where it stopped and both cores are used.
"""
from __future__ import annotations

import csv
import hashlib
import importlib
import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from common.data.catalogue import Entry, load_catalogue, missing_files
from common.data.degrade import KINDS, degrade
from common.data.manifest import COLUMNS, PRISTINE
from common.data.sources import data_dir
from common.data.teacher import fused_label
from common.errors import DqaError

log = logging.getLogger(__name__)

HELD_OUT_FILE = Path(__file__).resolve().parent / "held_out.txt"
LEVELS = (1, 2, 3, 4, 5)
SMALL_LEVELS = (1, 3, 5)
SMALL_CONTENTS = 3  # two train contents and one held-out content
LabelFn = Callable[[str], dict[str, float]]
Chain = list[tuple[str, int | None]]


def _no_labels(kind: str) -> dict[str, float]:
    return {}


@dataclass(frozen=True)
class Recipe:
    """What a suite's data set is made of.

    ``distortions`` are names of image degradations (``common.data.degrade.KINDS``), chains such as
    ``"low_light@2+jpeg"`` (low light fixed at severity 2, then JPEG at the graded severity), or, for
    video recipes, the video kinds of ``common.data.build_video.VIDEO_KINDS`` or chains applied to
    every frame. ``prepare`` turns a decoded source image into the pristine reference, ``make_clip``
    a video source into the pristine frames; ``labels`` adds fixed per-kind labels (e.g. ``true_4k``)
    to the teacher's.
    """

    suite: str
    media: str  # "image" or "video"
    select: Callable[[Entry], bool]
    distortions: tuple[str, ...]
    teacher: str  # one line: which teacher labels this set, for manifest.json
    prepare: Callable[[np.ndarray], np.ndarray] | None = None
    label: str = "fused"
    labels: LabelFn = _no_labels
    small_distortions: tuple[str, ...] = ()
    vmaf: bool = False  # video: also label codec and ladder items with VMAF
    make_clip: Callable[[Path], tuple[list[np.ndarray], float]] | None = None  # video: source -> frames, fps

    def contents(self, catalogue: Sequence[Entry]) -> list[Entry]:
        """The catalogue entries this recipe uses, in catalogue order."""
        return [e for e in catalogue if self.select(e)]


RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe) -> Recipe:
    """Make a suite's recipe available to ``dqa data build``."""
    if (recipe.prepare if recipe.media == "image" else recipe.make_clip) is None:
        raise ValueError(f"recipe {recipe.suite}: an image recipe needs prepare, a video recipe make_clip")
    named: tuple[str, ...] = ()
    if recipe.media == "video":
        from common.data.build_video import VIDEO_KINDS

        named = VIDEO_KINDS
    for d in (*recipe.distortions, *recipe.small_distortions):
        if d not in named:
            parse_chain(d)  # a ValueError names an unknown kind when the suite is imported, not mid-build
    RECIPES[recipe.suite] = recipe
    return recipe


def get_recipe(suite: str) -> Recipe:
    """The registered recipe of ``suite`` (suites register on import, as models do; the shared
    backbone's recipe lives in ``common.data.pretrain``)."""
    from common.registry import _discover

    importlib.import_module("common.data.pretrain")
    _discover()
    if suite not in RECIPES:
        raise ValueError(f"no data recipe for suite {suite!r}; known: {', '.join(sorted(RECIPES)) or 'none'}")
    return RECIPES[suite]


def held_out() -> frozenset[str]:
    """The fixed held-out content ids (catalogue paths), shared by every suite."""
    lines = HELD_OUT_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip() for x in lines if x.strip() and not x.startswith("#"))


def parse_chain(name: str) -> Chain:
    """``"low_light@2+jpeg"`` -> [("low_light", 2), ("jpeg", None)]; exactly one step is graded (None)."""
    steps: Chain = []
    for part in name.split("+"):
        kind, _, lv = part.partition("@")
        if kind not in KINDS:
            raise ValueError(f"{name}: unknown degradation {kind!r}; choose from {', '.join(KINDS)}")
        if lv and lv not in "12345":
            raise ValueError(f"{name}: a fixed severity must be 1-5, got {lv!r}")
        steps.append((kind, int(lv) if lv else None))
    if sum(lv is None for _, lv in steps) != 1:
        raise ValueError(f"{name}: exactly one step must be graded (without @level)")
    return steps


def item_seed(content: str, kind: str, level: int) -> int:
    """A stable seed per (content, kind, level), independent of build order and process."""
    return int.from_bytes(hashlib.sha256(f"{content}|{kind}|{level}".encode()).digest()[:4], "little")


def apply_chain(img: np.ndarray, chain: Chain, level: int, seed: int) -> np.ndarray:
    """Apply a parsed distortion chain with its graded step at ``level``."""
    for i, (kind, lv) in enumerate(chain):
        img = degrade(img, kind, level=level if lv is None else lv, seed=seed + i)
    return img


def fit_long_side(side: int) -> Callable[[np.ndarray], np.ndarray]:
    """A ``prepare`` that downscales (Lanczos, never up) so the long side is at most ``side`` pixels."""
    def prepare(img: np.ndarray) -> np.ndarray:
        im = Image.fromarray(img)
        if max(im.size) > side:
            im.thumbnail((side, side), Image.Resampling.LANCZOS)
        return np.asarray(im)

    prepare.__doc__ = f"long side at most {side} px (Lanczos)"
    return prepare


def slug(content: str) -> str:
    """A short, unique folder name for a content id."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(content).stem).strip("-")[:40] or "content"
    return f"{stem}-{hashlib.sha1(content.encode()).hexdigest()[:8]}"


def _row(path: str, ref: str, content: str, kind: str, level: int, labels: dict[str, float], split: str) -> dict:
    return {"path": path, "ref": ref, "content": content, "kind": kind, "level": level,
            "labels": json.dumps({k: round(float(v), 4) for k, v in labels.items()}, sort_keys=True), "split": split}


def load_source(path: Path) -> np.ndarray:
    """A catalogued image as 8-bit RGB; for a video, its middle frame."""
    from common.media import VIDEO_EXTS, load_image, probe_video, read_frames, to_uint8

    if path.suffix.lower() in VIDEO_EXTS:
        info = probe_video(path)
        return to_uint8(next(read_frames(path, [info.n_frames // 2], info=info)).data)
    return to_uint8(load_image(path))


def build_image_content(recipe: Recipe, entry: Entry, root: Path, out: Path, split: str,
                        distortions: Sequence[str], levels: Sequence[int]) -> list[dict]:
    """Pristine reference plus every distortion x level of one image content, with labels."""
    folder = out / slug(entry.path)
    folder.mkdir(parents=True, exist_ok=True)
    ref = recipe.prepare(load_source(root / entry.path))
    ref_rel = f"{folder.name}/pristine.png"
    Image.fromarray(ref).save(out / ref_rel, compress_level=1)
    rows = [_row(ref_rel, "", entry.path, PRISTINE, 0, {"fused": 100.0, **recipe.labels(PRISTINE)}, split)]
    for name in distortions:
        chain = parse_chain(name)
        for lv in levels:
            img = apply_chain(ref, chain, lv, item_seed(entry.path, name, lv))
            rel = f"{folder.name}/{name.replace('@', '')}_{lv}.png"
            Image.fromarray(img).save(out / rel, compress_level=1)
            labels = {"fused": fused_label(img, ref).fused, **recipe.labels(name)}
            rows.append(_row(rel, ref_rel, entry.path, name, lv, labels, split))
    return rows


def _build_one(suite: str, entry: Entry, root: Path, out: Path, split: str, distortions: Sequence[str],
               levels: Sequence[int]) -> tuple[str, list[dict]]:
    """Worker: build one content (recipes hold closures, so the worker looks its recipe up by name)."""
    import torch

    torch.set_num_threads(1)  # one content per process; the processes share the cores
    recipe = get_recipe(suite)
    if recipe.media == "video":
        from common.data.build_video import build_video_content

        return entry.path, build_video_content(recipe, entry, root, out, split, distortions, levels)
    return entry.path, build_image_content(recipe, entry, root, out, split, distortions, levels)


def set_dir(suite: str, small: bool = False, root: Path | None = None) -> Path:
    """Where a suite's set is built: ``$DQA_DATA/sets/<suite>[-small]``."""
    return (root or data_dir()) / "sets" / (f"{suite}-small" if small else suite)


def plan(recipe: Recipe, small: bool, test_only: bool, catalogue: Sequence[Entry]) -> list[tuple[Entry, str]]:
    """The contents to build with their split: all of them, only the held-out ones, or a small sample."""
    test = held_out()
    items = [(e, "test" if e.path in test else "train") for e in recipe.contents(catalogue)]
    if test_only:
        items = [it for it in items if it[1] == "test"]
    if small:
        train = [it for it in items if it[1] == "train"][: SMALL_CONTENTS - 1]
        items = train + [it for it in items if it[1] == "test"][:1]
    return items


def build(suite: str, small: bool = False, test_only: bool = False, workers: int | None = None,
          root: Path | None = None, progress: bool = True, catalogue: Sequence[Entry] | None = None) -> Path:
    """Build (or resume) a suite's set and return its ``manifest.csv`` (``catalogue``: the committed one)."""
    recipe = get_recipe(suite)
    root = root or data_dir()
    chosen = plan(recipe, small, test_only, load_catalogue() if catalogue is None else catalogue)
    missing = missing_files([e for e, _ in chosen], root)
    if missing:
        raise DqaError(f"{len(missing)} source file(s) are missing under {root}, e.g. {missing[0]}; "
                       "run `dqa data fetch` (and `dqa data screens` for screen content) first")
    out = set_dir(suite, small, root)
    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    distortions = (recipe.small_distortions or recipe.distortions[:3]) if small else recipe.distortions
    levels = SMALL_LEVELS if small else LEVELS
    todo = [(e, s) for e, s in chosen if not (parts / f"{slug(e.path)}.csv").exists()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    with ProcessPoolExecutor(workers) as pool, tqdm(total=len(chosen), initial=len(chosen) - len(todo),
                                                    desc=f"build {out.name}", unit="content",
                                                    disable=not progress) as bar:
        futures = {pool.submit(_build_one, suite, e, root, out, s, distortions, levels): e for e, s in todo}
        failed = []
        for fut in as_completed(futures):
            try:
                content, rows = fut.result()
            except Exception as exc:  # one bad source is reported and the build goes on
                failed.append(f"{futures[fut].path}: {exc}")
                log.error("build %s: %s failed: %s", suite, futures[fut].path, exc)
            else:
                _write_csv(parts / f"{slug(content)}.csv", rows)
            bar.update()
    return _assemble(recipe, out, small, distortions, levels, failed)


def _write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # a part exists only once it is complete


def _assemble(recipe: Recipe, out: Path, small: bool, distortions: Sequence[str], levels: Sequence[int],
              failed: list[str]) -> Path:
    """Merge every finished part (this run's and earlier runs') into manifest.csv and write manifest.json."""
    rows = []
    for part in sorted((out / "parts").glob("*.csv")):
        with open(part, newline="", encoding="utf-8") as f:
            rows += list(csv.DictReader(f))
    rows.sort(key=lambda r: (r["split"], r["content"], r["kind"] != PRISTINE, r["kind"], int(r["level"])))
    manifest = out / "manifest.csv"
    _write_csv(manifest, rows)
    labels = sorted({k for r in rows for k in json.loads(r["labels"])})
    contents = {r["content"]: r["split"] for r in rows}
    meta = {"suite": recipe.suite, "label": recipe.label, "labels": labels, "media": recipe.media, "small": small,
            "teacher": recipe.teacher, "prepare": ((recipe.prepare or recipe.make_clip).__doc__ or "").strip(),
            "distortions": list(distortions), "levels": list(levels), "vmaf": recipe.vmaf,
            "held_out": sorted(c for c, s in contents.items() if s == "test"),
            "contents": {"train": sum(s == "train" for s in contents.values()),
                         "test": sum(s == "test" for s in contents.values())},
            "rows": len(rows), "failed": failed,
            "command": f"dqa data build --suite {recipe.suite}" + (" --small" if small else "")}
    (out / "manifest.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("%s: %d rows from %d contents", manifest, len(rows), len(contents))
    return manifest

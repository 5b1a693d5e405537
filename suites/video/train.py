"""Training recipes of the video models (``dqa train ugc|pgc|pgc-fr|game``).

Each model is the shared pretrained backbone (``weights/backbone.pt``) with its own BatchNorm + MLP head, trained
on the train split of the suite's set (``dqa data build --suite S``) against the set's teacher label: the fused
full-reference label for ``ugc``, VMAF for ``pgc``, ``pgc-fr`` and ``game``. The heads can train together with
the backbone's last stages, end to end on fragments as in FAST-VQA (Wu et al., ECCV 2022), the first stages and
every BatchNorm statistic staying as pretrained (``--train-stages``). But fine-tuned on a few dozen contents, deep
features learn the contents as much as their distortions, so no shipped recipe trains the backbone:
- ``ugc`` reads the frozen backbone's features of the fragments (``deep_views=1``; the shipped weights, trained
  before it, read both views) and classic distortion cues (:mod:`common.metrics.cues`), which carry across
  contents, and trains on batches of one content each, its pristine clip first, with a rank term inside each;
- ``pgc`` and ``game`` read the fragment cues and each file's bitstream cues (codec, bits per pixel, coded size,
  H.264, HEVC, VP9 and AV1 keyframe quantiser: :func:`common.metrics.cues.bitstream_cues`), not the backbone; the
  bitstream cues are replaced by the "unknown" input for a random fifth of the training samples, so that images
  and other codecs score from the pixels alone;
- ``pgc-fr`` fuses only how the two sides differ (feature distances and classic metrics) with a linear head on
  the frozen backbone, as VMAF fuses its elementary metrics (see docs/video.md).

Decoding is the slow part on a CPU, so every training clip is decoded once into uint8 views cached in the run
folder: ``FRAMES`` uniform frames per clip, ``PASSES`` times (the scoring views, then fragments at random cell
positions). Each training step reads ``STEP_FRAMES`` random frames of each clip in one random pass, flipped at
random; their mean score is trained against the clip's label with L1 + PLCC + rank terms. Validation scores all
the frames of the scoring pass and pools them as the runner does. A fixed fifth of the training contents
validates (model selection, early stopping); the held-out test contents are never read. ``pgc`` and ``game``
then train once more from scratch on the training and validation contents together, for the epochs validation
chose (``refit``), and ship that network: their heads are short of contents more than of anything else, and
their validation curves are flat around the chosen epoch, so that epoch count carries over. ``ugc``'s peaks at
one epoch (see docs/video.md), so each of its runs ends with the mean of the weights of its last five epochs
(``average_from``), and it ships the heads of three runs from consecutive seeds together (``seeds``), which
evens out its noisy validation curve and the luck of one seed; ``pgc-fr`` reads only how a clip differs from
its source and ships the validated network.
"""
from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from common.data.manifest import Item, read_manifest
from common.media import read_media
from common.metrics.cues import BPP_SIZE_EXPONENT, bitstream_cues
from common.train.finetune import FinetuneLoss, frame_indices
from common.train.trainer import Fit, TrainConfig, Trainer, epoch_order, seed_everything, validation_share
from common.weights import load_weights, record_weights, weights_dir
from suites.video.model import (GRID, PATCH, VideoNet, file_bitstream_cues, frame_generator, frame_views_uint8,
                                match_size)

FRAMES = 4  # uniform frames of each training clip
PASSES = 3  # cached views per frame: the scoring views, then random fragment positions
STEP_FRAMES = 2  # frames of each clip a training step reads (at least 2: the head's BatchNorm needs a batch)
VAL_SHARE = 5  # one training content in five validates
CHUNK = 64  # clips per cache file: caching resumes from the last whole chunk
BITSTREAM_DROP = 0.2  # share of training samples whose bitstream cues read "unknown"
VIEWS_VERSION = 1  # bump when the cached views change, so old caches are not reused
FR_VIEWS_VERSION = 2  # full-reference caches: 2 adds the views of the reference frame before each


@dataclass(frozen=True)
class VideoRecipe:
    """Which set and label a video model trains on, whether it is full-reference, and its network: the head's
    hidden width (0: linear), the backbone stages trained with it, whether the head reads the distorted views'
    pooled deep features (``content``; a no-reference head without them reads its cues alone), and (NR) the classic
    distortion cues (``cues``; ``exposure=False``: the fragment cues only) and the file's bitstream cues
    (``bitstream``); the learning rate (1e-3 suits heads on the frozen backbone; about 3e-4 where backbone stages
    train) and the epochs. ``per_content`` > 0 fills each batch with groups of that many clips of one content, its
    pristine clip first, and ``within`` weighs a rank term inside each group, so that the head learns how a
    content's versions order, the pristine one included. ``refit``: once validation has chosen the epoch, train
    the network again on the training and validation contents together (:func:`refit_all`) and ship that.
    ``deep_views=1``: the backbone reads the fragments only, the whole view feeding the exposure cues alone;
    ``grid``: the fragments' patches per side and ``positions`` where they sit when scoring (:class:`VideoNet`).
    ``average_from`` > 0: ship the mean of the weights of that epoch and every later one
    (:attr:`common.train.TrainConfig.average_from`) rather than the best validated epoch's. ``seeds`` > 1: train
    that many heads on the frozen backbone, from consecutive seeds, and ship them together, scoring as their mean
    (:meth:`VideoNet.ensemble`)."""

    name: str
    set: str
    label: str
    full_reference: bool = False
    hidden: int = 256
    train_stages: int = 0
    content: bool = True
    lr: float = 1e-3
    cues: bool = False
    per_content: int = 0
    within: float = 0.0
    bitstream: bool = False
    exposure: bool = True
    epochs: int = 15
    refit: bool = False
    deep_views: int = 2
    grid: int = GRID
    positions: str = "centre"
    average_from: int = 0
    seeds: int = 1

    def __post_init__(self) -> None:
        if self.seeds > 1 and (self.refit or self.train_stages):
            raise ValueError(f"{self.name}: an ensemble of seeds shares one frozen backbone and ships its validated "
                             "heads: it takes neither refit nor trained stages")


RECIPES = {r.name: r for r in (
    VideoRecipe("ugc", "ugc", "fused", cues=True, per_content=8, within=2.0, deep_views=1, grid=4,
                positions="frame", epochs=10, average_from=6, seeds=3),
    VideoRecipe("pgc", "pgc", "vmaf", content=False, cues=True, bitstream=True, exposure=False, epochs=40,
                refit=True),
    VideoRecipe("pgc-fr", "pgc", "vmaf", full_reference=True, hidden=0, content=False),
    VideoRecipe("game", "game", "vmaf", content=False, cues=True, bitstream=True, exposure=False, epochs=40,
                refit=True))}
SETTINGS = {"batch": 32}  # the shipped runs; the CLI's defaults (the learning rate and epochs are the recipe's)


def _frames(path: Path, before: bool = False) -> list[np.ndarray]:
    """FRAMES uniform frames of a clip (the one frame of an image), the last repeated where a clip has fewer;
    ``before``: the frame before each instead (the frame itself where there is none, as the runner scores)."""
    wanted = frame_indices(path, FRAMES)
    if before:
        wanted = [max(k - 1, 0) for k in wanted]
    decoded = {f.index: f.data for f in read_media(path, sorted(set(wanted)))}
    frames = [decoded[k] for k in wanted if k in decoded]
    return frames + frames[-1:] * (FRAMES - len(frames))


def content_seed(content: str) -> int:
    """A stable seed per content: a distorted clip and its reference get the same random fragment positions."""
    return int.from_bytes(hashlib.sha1(content.encode()).digest()[:4], "little")


@dataclass(frozen=True)
class ViewSpec:
    """How cached views are made: the whole view (``whole``) and the fragments' ``grid``
    (:func:`suites.video.model.frame_views_uint8`), and where the scoring pass takes the patches (``positions``,
    :class:`suites.video.model.VideoNet`)."""

    whole: str = "area"
    grid: int = GRID
    positions: str = "centre"


def clip_views(frames: list[np.ndarray], seed: int, size: tuple[int, int] | None = None,
               spec: ViewSpec = ViewSpec()) -> Tensor:
    """(PASSES, frames, 2, 3, S, S) uint8 views made as ``spec`` says: pass 0 as scored, later passes with
    fragments at random cell positions (seeded by ``seed``, pass and frame). ``size`` (h, w): scale the frames to
    it first (FR)."""
    passes = []
    for p in range(PASSES):
        views = []
        for k, f in enumerate(frames):
            gen = (torch.Generator().manual_seed((seed * 7919 + p) * 1009 + k) if p else
                   frame_generator(spec.positions, k))
            views.append(frame_views_uint8(f if size is None else match_size(f, size), gen, spec.whole, spec.grid))
        passes.append(torch.stack(views))
    return torch.stack(passes)


def item_views(item: Item, full_reference: bool, refs: dict[Path, tuple[Tensor, tuple[int, int]]],
               spec: ViewSpec = ViewSpec()) -> Tensor:
    """(PASSES, FRAMES, V, 3, S, S) uint8 views of one clip; FR: the distorted views (scaled to the reference's
    size), then the reference's and those of the reference frame before each (for motion) at the same fragment
    positions, the reference's kept in ``refs`` (the clips of a content come together, so one reference is kept).
    ``spec``: how the views are made (FR: its grid only; both sides whole and cell-centred, so that they align)."""
    seed = content_seed(item.content)
    if not full_reference:
        return clip_views(_frames(item.path), seed, spec=spec)
    fr = ViewSpec(grid=spec.grid)
    ref = item.ref or item.path
    if ref not in refs:
        frames = _frames(ref)
        refs.clear()
        views = torch.cat([clip_views(frames, seed, spec=fr), clip_views(_frames(ref, before=True), seed, spec=fr)], 2)
        refs[ref] = views, frames[0].shape[:2]
    ref_views, size = refs[ref]
    return torch.cat([clip_views(_frames(item.path), seed, size, fr), ref_views], 2)


def _cache_chunk(items: list[Item], full_reference: bool, path: Path, spec: ViewSpec) -> int:
    """Write the views of ``items`` to the chunk file ``path`` (atomically); return how many clips."""
    torch.set_num_threads(1)  # one chunk per process
    refs: dict[Path, tuple[Tensor, tuple[int, int]]] = {}
    views = np.stack([item_views(item, full_reference, refs, spec).numpy() for item in items])
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, views)
    tmp.replace(path)
    return len(items)


def cache_views(items: list[Item], full_reference: bool, cache: Path, progress: bool = True,
                workers: int | None = None, spec: ViewSpec = ViewSpec()) -> list[np.ndarray]:
    """The uint8 views of every item, made as ``spec`` says, cached in ``cache`` in chunks of CHUNK clips made by
    ``workers`` processes (default: one per CPU core); a re-run reads the finished chunks. A list of memory-mapped
    (n, PASSES, FRAMES, V, 3, S, S) arrays."""
    cache.mkdir(parents=True, exist_ok=True)
    parts = [items[k:k + CHUNK] for k in range(0, len(items), CHUNK)]
    paths = [cache / f"chunk{k:05d}.npy" for k in range(len(parts))]
    todo = [k for k, path in enumerate(paths) if not path.exists()]
    bar = tqdm(total=len(items), initial=len(items) - sum(len(parts[k]) for k in todo), desc="views", unit="clip",
               disable=not progress)
    workers = min(workers or os.cpu_count() or 1, len(todo))
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for job in as_completed([pool.submit(_cache_chunk, parts[k], full_reference, paths[k], spec)
                                     for k in todo]):
                bar.update(job.result())
    else:
        for k in todo:
            bar.update(_cache_chunk(parts[k], full_reference, paths[k], spec))
    bar.close()
    return [np.load(path, mmap_mode="r") for path in paths]


class ClipViews(Dataset):
    """Cached clip views and their 0-100 labels. Training: STEP_FRAMES random frames of a random pass, flipped at
    random; validation: every frame of the scoring pass. With ``side`` (the clips' bitstream cues), a sample's views
    come paired with them, in training replaced by the unknown input for BITSTREAM_DROP of the samples."""

    def __init__(self, chunks: list[np.ndarray], clips: range, targets: list[float], train: bool,
                 seed: int = 0, items: list[Item] | None = None, per_content: int = 0,
                 side: Tensor | None = None) -> None:
        """``clips``: which of the cached clips (in cache order), with their ``targets``, (for ``per_content``
        groups, see :meth:`order`) their ``items`` and their bitstream cues ``side`` (n, N_BITSTREAM)."""
        index = [(c, i) for c, chunk in enumerate(chunks) for i in range(len(chunk))]
        if len(clips) != len(targets) or (clips and clips[-1] >= len(index)):
            raise ValueError(f"{len(index)} cached clips; asked for {len(clips)} clips with {len(targets)} labels")
        if per_content and (items is None or len(items) != len(targets)):
            raise ValueError("per_content groups need the item of every clip")
        if side is not None and len(side) != len(targets):
            raise ValueError(f"{len(side)} bitstream cue rows for {len(targets)} clips")
        self.side = side
        self.index = [index[i] for i in clips]
        self.chunks, self.targets, self.train, self.seed, self.epoch = chunks, targets, train, seed, 0
        self.per_content = per_content
        names = {c: k for k, c in enumerate(sorted({i.content for i in items or []}))}
        self.groups = [names[i.content] for i in items] if items else [0] * len(targets)
        self.pristine = [i.pristine for i in items] if items else [False] * len(targets)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.targets)

    def order(self, seed: int, epoch: int) -> list[int]:
        """The sample order of an epoch, len(self) long. With ``per_content``: consecutive groups of that many clips
        of one content, its pristine clips first, the contents taken in a new random order each round; else a
        plain permutation (both fixed by seed and epoch)."""
        if not self.per_content:
            return epoch_order(len(self), seed, epoch)
        rng = np.random.default_rng((seed, epoch, 1))
        first: dict[int, list[int]] = {}
        rest: dict[int, list[int]] = {}
        for i, g in enumerate(self.groups):
            (first if self.pristine[i] else rest).setdefault(g, []).append(i)
        order: list[int] = []
        while len(order) < len(self):
            for g in rng.permutation(sorted(set(first) | set(rest))):
                lead, others = first.get(g, [])[:self.per_content], rest.get(g, [])
                take = min(self.per_content - len(lead), len(others))
                order += lead + [others[k] for k in rng.choice(len(others), take, replace=False)]
        return order[:len(self)]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        c, k = self.index[i]
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            frames = np.sort(rng.choice(FRAMES, STEP_FRAMES, replace=False))
            views = torch.from_numpy(np.array(self.chunks[c][k, rng.integers(PASSES)][frames]))
            views = views.flip(-1) if rng.random() < 0.5 else views
        else:
            views = torch.from_numpy(np.array(self.chunks[c][k, 0]))
        sample: dict[str, Any] = {"views": views, "target": torch.tensor(self.targets[i], dtype=torch.float32),
                                  "group": torch.tensor(self.groups[i])}
        if self.side is not None:
            drop = self.train and rng.random() < BITSTREAM_DROP
            sample["views"] = (views, bitstream_cues(None) if drop else self.side[i])
        return sample


class PooledClips(nn.Module):
    """The net on uint8 clip views (B, F, V, 3, S, S), with a bitstream net's (B, N_BITSTREAM) cues: the mean of its
    frame scores, as the runner pools them."""

    def __init__(self, net: VideoNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, views: Tensor | tuple[Tensor, Tensor] | list[Tensor]) -> Tensor:
        side = None
        if not isinstance(views, Tensor):
            views, side = views
        b, f = views.shape[:2]
        x = views.flatten(0, 1).float().div_(255)
        return self.net(x if side is None else (x, side.repeat_interleave(f, 0))).view(b, f).mean(1)


def architecture(recipe: VideoRecipe, hidden: int, train_stages: int) -> str:
    """The manifest's one-line description of a recipe's network."""
    side = recipe.grid * PATCH
    views = f"two {side}x{side} views per frame (fragments of {recipe.grid}x{recipe.grid} patches + whole frame)"
    where = "; each frame's patches at its own seeded random cell positions" * (recipe.positions == "frame")
    deep = views if recipe.deep_views == 2 else (f"the {side}x{side} fragments of each frame ({recipe.grid}x"
                                                 f"{recipe.grid} patches{where}; the whole frame, sampled sparsely, "
                                                 "feeds the exposure and colour cues only)")
    head = (f"BatchNorm + {'MLP' if hidden else 'linear'} head per frame, mean pooling (suites.video.model.VideoNet); "
            "fp16")
    if recipe.seeds > 1:
        head = f"{recipe.seeds} such heads trained from consecutive seeds, scoring as their mean: " + head
    bits = " and the file's bitstream cues" if recipe.bitstream else ""
    if not (recipe.content or recipe.full_reference):
        cues = ("classic distortion cues (common.metrics.cues) of " + (views if recipe.exposure else
                f"each frame's {side}x{side} fragments (blur, detail, noise and blocks)"))
        return (f"{cues}{bits}, {head}; the backbone's deep "
                "features are left out (on this set they learnt the training contents: docs/video.md)")
    return ("shared ResNet-18-family backbone (" + (f"last {train_stages} stages fine-tuned" if train_stages else
                                                   "frozen") + f") on {deep}"
            + (", with classic distortion cues (common.metrics.cues)" if recipe.cues else "") + bits
            + (f" of the distorted and the reference frame: {'pooled features, ' * recipe.content}LPIPS-style "
               "feature distances, PSNR, SSIM, VIF, GMSD and the reference's motion of each view"
               if recipe.full_reference else "") + f", {head}")


def clip_bitstream_cues(items: list[Item]) -> Tensor:
    """(len(items), N_BITSTREAM) bitstream cues of the items' files, as scoring reads them."""
    return torch.stack([file_bitstream_cues(i.path) for i in items])


def split_items(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """Training and validation items: a fixed fifth of the contents validates (none for sets of one content)."""
    val = [validation_share(i.content, VAL_SHARE) for i in items]
    if len(set(val)) < 2:
        val = [False] * len(items)
    return [i for i, v in zip(items, val) if not v], [i for i, v in zip(items, val) if v]


def start_net(recipe: VideoRecipe, hidden: int, backbone: str | None, train_stages: int) -> tuple[VideoNet, str]:
    """A fresh video net on the pretrained shared backbone (``backbone`` file, else the shipped one)."""
    state, sha = load_weights("backbone", backbone)
    cfg = state["config"]
    net = VideoNet(float(cfg["width"]), tuple(cfg["blocks"]), hidden, full_reference=recipe.full_reference,
                   metrics=recipe.full_reference, content=recipe.content, cues=recipe.cues, bitstream=recipe.bitstream,
                   exposure=recipe.exposure, deep_views=recipe.deep_views, grid=recipe.grid,
                   positions=recipe.positions)
    net.backbone.load_state_dict({k: v.float() for k, v in state["backbone"].items()})
    net.freeze_backbone(train_stages)
    return net, sha


def _fit_record(fit: Fit, config: TrainConfig) -> dict[str, Any]:
    """What the manifest records of one training run."""
    return {"epochs": fit.epochs, "steps": fit.steps, "best_epoch": fit.best_epoch,
            "val_srcc": fit.best_srcc if math.isfinite(fit.best_srcc) else None, "stopped": fit.stopped,
            **({"averaged": {"epochs": fit.averaged, "from_epoch": config.average_from,
                             "val_srcc": fit.averaged_srcc if math.isfinite(fit.averaged_srcc) else None,
                             "note": "the network: the mean of the weights at the end of these epochs"}}
               if fit.averaged else {})}


def refit_all(recipe: VideoRecipe, net: VideoNet, chunks: list[np.ndarray], items: list[Item], targets: list[float],
              side: Tensor | None, config: TrainConfig, epochs: int, checkpoint: Path) -> dict[str, int]:
    """Train the fresh ``net`` on every cached clip (the training and validation contents together) for the
    ``epochs`` that validation chose, on the validated run's learning-rate schedule stopped there: model selection
    is done, and more contents is what these heads lack. Returns what the manifest records of it."""
    seed_everything(config.seed)
    data = ClipViews(chunks, range(len(targets)), targets, train=True, seed=config.seed, items=items,
                     per_content=recipe.per_content, side=side)
    steps = epochs * math.ceil(len(data) / config.batch_size)
    cfg = replace(config, max_steps=min(steps, config.max_steps or steps))
    fit = Trainer(PooledClips(net), FinetuneLoss(within=recipe.within), data, None, cfg, checkpoint).fit()
    return {"clips": len(items), "contents": len({i.content for i in items}), "epochs": epochs, "steps": fit.steps}


def train(name: str, out: str | Path, set_dir: str | Path, config: TrainConfig, hidden: int | None = None,
          backbone: str | None = None, run_dir: str | Path | None = None, command: str = "",
          train_stages: int | None = None) -> Fit:
    """Train video model ``name`` (its head and the backbone's last ``train_stages`` stages; None: the recipe's)
    on the set in ``set_dir`` and write its weight file to ``out``."""
    if name not in RECIPES:
        raise ValueError(f"no video recipe {name!r}; choose one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    hidden = recipe.hidden if hidden is None else hidden
    train_stages = recipe.train_stages if train_stages is None else train_stages
    if recipe.average_from and config.average_from is None:
        config = replace(config, average_from=recipe.average_from)
    if train_stages and not (recipe.content or recipe.full_reference):
        raise ValueError(f"{name}'s head reads its cues alone, not the backbone: --train-stages does not apply")
    manifest = read_manifest(set_dir)
    items = [i for i in manifest.select("train") if recipe.label in i.labels]
    if not items:
        raise ValueError(f"{manifest.csv}: no train rows with a {recipe.label!r} label; build the full set with "
                         f"`dqa data build --suite {recipe.set}` (a --test-only build has no train rows)")
    seed_everything(config.seed)
    net, backbone_sha = start_net(recipe, hidden, backbone, train_stages)
    version = FR_VIEWS_VERSION if recipe.full_reference else VIEWS_VERSION
    whole = "sampled" if net.whole_view == "sampled" else "area"  # an unread view: any cache serves, so keep one
    views = ViewSpec(whole, recipe.grid, recipe.positions)
    spec = f"{manifest.sha256}|{recipe.full_reference}|{FRAMES}|{PASSES}|{recipe.grid * PATCH}|{version}"
    spec += "|sampled-nearest" * (whole == "sampled") + "|frame-positions" * (recipe.positions == "frame")
    key = hashlib.sha256(spec.encode())  # older keys stay
    run = Path(run_dir) if run_dir else manifest.root.parent.parent / "runs" / name
    train_items, val_items = split_items(items)
    views_dir = run / f"views-{key.hexdigest()[:12]}"  # one per set and view recipe
    chunks = cache_views(train_items + val_items, recipe.full_reference, views_dir, config.progress, spec=views)
    targets = [i.labels[recipe.label] for i in train_items + val_items]
    n = len(train_items)
    if recipe.per_content and config.batch_size % recipe.per_content:
        raise ValueError(f"{name} trains on groups of {recipe.per_content} clips of one content: the batch size must "
                         f"be a multiple of {recipe.per_content}, got {config.batch_size}")
    side = clip_bitstream_cues(train_items + val_items) if recipe.bitstream else None
    val_set = ClipViews(chunks, range(n, len(targets)), targets[n:], train=False,
                        side=None if side is None else side[n:]) if val_items else None
    grouping = (recipe.cues, recipe.per_content, recipe.within)  # in the key only where set: older keys stay
    bitstream = ("bitstream", BITSTREAM_DROP, BPP_SIZE_EXPONENT, "quantiser", "hevc", "av1")
    extra = (grouping * any(grouping) + (bitstream,) * recipe.bitstream + (("fragment cues",),) * (not recipe.exposure)
             + (("deep views", recipe.deep_views),) * (recipe.deep_views != 2)
             + (("grid", recipe.grid),) * (recipe.grid != GRID)
             + (("positions", recipe.positions),) * (recipe.positions != "centre"))
    members = []
    for member in range(recipe.seeds):  # each head's run has the key of a one-head run of its seed: it resumes one
        cfg = replace(config, seed=config.seed + member)
        if member:
            seed_everything(cfg.seed)
            net = start_net(recipe, hidden, backbone, train_stages)[0]
        train_set = ClipViews(chunks, range(n), targets[:n], train=True, seed=cfg.seed, items=train_items,
                              per_content=recipe.per_content, side=None if side is None else side[:n])
        settings = {k: v for k, v in asdict(cfg).items() if k not in ("progress", "max_minutes", "device", "workers")}
        run_spec = repr((hidden, train_stages, recipe.content, backbone_sha, settings) + extra)
        run_key = hashlib.sha256(run_spec.encode()).hexdigest()[:12]
        fit = Trainer(PooledClips(net), FinetuneLoss(within=recipe.within), train_set, val_set, cfg,
                      views_dir / f"run-{run_key}.pt").fit()
        members.append((net, fit))
    ensemble = None
    if recipe.seeds > 1:
        net = VideoNet.ensemble([m for m, _ in members])
        val = Trainer(PooledClips(net), FinetuneLoss(), train_set, val_set, config).validate() if val_set else {}
        ensemble = {"heads": recipe.seeds, "seeds": [config.seed + k for k in range(recipe.seeds)],
                    "members": [_fit_record(f, config) for _, f in members],
                    "note": "the shipped network: the heads of these runs on the one frozen backbone, scoring as "
                            "their mean; val_srcc is theirs together"}
    refit = None
    if recipe.refit and val_items and fit.best_epoch:
        net = start_net(recipe, hidden, backbone, train_stages)[0]
        refit = refit_all(recipe, net, chunks, train_items + val_items, targets, side, config, fit.best_epoch,
                          views_dir / f"run-{run_key}-refit.pt")
    trained = (f"stages {5 - train_stages}-4 trained with the head; the others and all BatchNorm statistics frozen"
               if train_stages else "frozen")
    training = {"set": manifest.root.name, "set_sha256": manifest.sha256, "label": recipe.label,
                "backbone_sha256": backbone_sha, "backbone": trained, "frames_per_clip": FRAMES, "passes": PASSES,
                "train_clips": n, "val_clips": len(val_items),
                "train_contents": len({i.content for i in train_items}),
                "val_contents": len({i.content for i in val_items}),
                **({"val_srcc": val.get("val_srcc"), "ensemble": ensemble} if ensemble else _fit_record(fit, config)),
                "train_config": asdict(config),
                **({"refit": {**refit, "note": "the shipped network: trained again on the training and validation "
                              "contents together for the epochs validation chose"}} if refit else {})}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.export({"command": command, "model": name, **training}), out)
    if out.resolve().parent == weights_dir().resolve():
        record_weights(out.stem, out, {
            "architecture": architecture(recipe, hidden, train_stages),
            "config": net.config(),
            "recipe": f"dqa data build --suite {recipe.set} && {command}",
            "data_sources": [f"$DQA_DATA/sets/{manifest.root.name} (sha256 {manifest.sha256[:12]}), built by "
                             "suites/video/data.py from common/data/catalogue.csv: Debian and PyPI packages (see the "
                             "catalogue's licence column)", f"weights/backbone.pt (sha256 {backbone_sha[:12]})"],
            "training": {**training, **({"batches": f"groups of {recipe.per_content} clips of one content, the "
                                                   f"pristine first; within-group rank weight {recipe.within}"}
                                        if recipe.per_content else {}),
                         **({"bitstream_drop": BITSTREAM_DROP} if recipe.bitstream else {})}})
    return fit

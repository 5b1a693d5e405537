"""Training recipes of the video models (``dqa train ugc|pgc|pgc-fr|game``).

Each model is the shared pretrained backbone (``weights/backbone.pt``, kept frozen) with its own BatchNorm + MLP
head, trained on the train split of the suite's set (``dqa data build --suite S``) against the set's teacher
label: the fused full-reference label for ``ugc``, VMAF for ``pgc``, ``pgc-fr`` and ``game``. Because the backbone
is frozen, every training clip is turned into views and passed through it once: ``FRAMES`` uniform frames per
clip, ``PASSES`` times (the inference views, then fragments at random cell positions, flipped at random), cached in
the run folder. The head then trains in a minute on the cached features: per-frame scores, mean-pooled per clip as
at inference, with L1 + PLCC + rank terms against the clip's label. A fixed fifth of the training contents
validates (model selection, early stopping); the held-out test contents are never read.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from common.data.manifest import Item, read_manifest
from common.media import read_media
from common.train.finetune import FinetuneLoss, frame_indices
from common.train.trainer import Fit, TrainConfig, Trainer, seed_everything, validation_share
from common.weights import load_weights, record_weights, weights_dir
from suites.video.model import SIDE, VideoNet, frame_views, match_size

FRAMES = 4  # uniform frames of each training clip
PASSES = 2  # views per frame: the inference views, then random fragment positions (flipped at random)
VAL_SHARE = 5  # one training content in five validates
CHUNK = 64  # clips per cache file: extraction resumes from the last whole chunk
FEATURES_VERSION = 2  # bump when the views or head inputs change, so cached features are not reused


@dataclass(frozen=True)
class VideoRecipe:
    """Which set and label a video model trains on, and whether it is full-reference."""

    name: str
    set: str
    label: str
    full_reference: bool = False


RECIPES = {r.name: r for r in (VideoRecipe("ugc", "ugc", "fused"), VideoRecipe("pgc", "pgc", "vmaf"),
                               VideoRecipe("pgc-fr", "pgc", "vmaf", full_reference=True),
                               VideoRecipe("game", "game", "vmaf"))}
SETTINGS = {"epochs": 60, "batch": 32, "lr": 1e-3, "hidden": 256}  # the shipped runs; the CLI's defaults


def _frames(path: Path) -> list[np.ndarray]:
    """FRAMES uniform frames of a clip (the one frame of an image)."""
    return [f.data for f in read_media(path, frame_indices(path, FRAMES))]


def content_seed(content: str) -> int:
    """A stable seed per content: a distorted clip and its reference get the same random fragment positions."""
    return int.from_bytes(hashlib.sha1(content.encode()).digest()[:4], "little")


def clip_views(frames: list[np.ndarray], seed: int, size: tuple[int, int] | None = None) -> Tensor:
    """(PASSES, frames, V, 3, S, S) views: pass 0 as scored, later passes with fragments at random cell positions
    (seeded by ``seed``, pass and frame) and flipped at random. ``size`` (h, w): scale frames to it first (FR)."""
    passes = []
    for p in range(PASSES):
        flip = p > 0 and np.random.default_rng((seed, p)).random() < 0.5
        views = []
        for k, f in enumerate(frames):
            gen = torch.Generator().manual_seed((seed * 7919 + p) * 1009 + k) if p else None
            v = frame_views(f if size is None else match_size(f, size), gen)
            views.append(v.flip(-1) if flip else v)
        passes.append(torch.stack(views))
    return torch.stack(passes)


def _maps(net: VideoNet, views: Tensor) -> list[Tensor]:
    """Stage maps of (P, F, V, 3, S, S) views, each (P, F, V, C, h, w)."""
    with torch.inference_mode():
        return [m.unflatten(0, views.shape[:3]) for m in net.maps(views.flatten(0, 1))]


def clip_features(net: VideoNet, item: Item, refs: dict[Path, tuple[list[Tensor], tuple[int, int]]]) -> Tensor:
    """Head inputs (PASSES, FRAMES, D) of one clip; FR reference feature maps are kept in ``refs`` (per reference
    file, computed once for all the clips of a content)."""
    seed = content_seed(item.content)
    ref_maps, size = None, None
    if net.full_reference:
        ref = item.ref or item.path
        if ref not in refs:
            frames = _frames(ref)
            refs.clear()  # the items of a content come together: keep one reference
            refs[ref] = _maps(net, clip_views(frames, seed)), frames[0].shape[:2]
        ref_maps, size = refs[ref]
    dist_maps = _maps(net, clip_views(_frames(item.path), seed, size))
    n = dist_maps[0].shape[1] if ref_maps is None else min(dist_maps[0].shape[1], ref_maps[0].shape[1])

    def flat(maps: list[Tensor]) -> list[Tensor]:
        return [m[:, :n].flatten(0, 2) for m in maps]

    with torch.inference_mode():
        f = net.head_input(flat(dist_maps), None if ref_maps is None else flat(ref_maps)).view(PASSES, n, -1)
    return torch.cat([f, f[:, -1:].expand(-1, FRAMES - n, -1)], 1) if n < FRAMES else f


def extract(net: VideoNet, items: list[Item], cache: Path, progress: bool = True) -> np.ndarray:
    """Head inputs (N, PASSES, FRAMES, D) of every item through the frozen backbone, cached in ``cache`` in chunks
    of CHUNK clips (a re-run reads the finished chunks); clips with fewer frames repeat their last frame."""
    cache.mkdir(parents=True, exist_ok=True)
    net.eval()
    chunks = []
    refs: dict[Path, tuple[list[Tensor], tuple[int, int]]] = {}
    bar = tqdm(total=len(items), desc="features", unit="clip", disable=not progress)
    for start in range(0, len(items), CHUNK):
        path = cache / f"chunk{start // CHUNK:05d}.npy"
        if not path.exists():
            out = []
            for item in items[start:start + CHUNK]:
                out.append(clip_features(net, item, refs).half().numpy())
                bar.update(1)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, np.stack(out))
            tmp.replace(path)
        else:
            bar.update(min(CHUNK, len(items) - start))
        chunks.append(np.load(path))
    bar.close()
    return np.concatenate(chunks)


class CachedClips(Dataset):
    """Cached head inputs of clips and their 0-100 labels; training draws a random pass per clip and epoch."""

    def __init__(self, feats: np.ndarray, targets: list[float], train: bool, seed: int = 0) -> None:
        self.feats, self.targets, self.train, self.seed, self.epoch = feats, targets, train, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        p = int(np.random.default_rng((self.seed, self.epoch, i)).integers(PASSES)) if self.train else 0
        return {"views": torch.from_numpy(self.feats[i, p].astype(np.float32)),
                "target": torch.tensor(self.targets[i], dtype=torch.float32)}


class PooledHead(nn.Module):
    """The net's BatchNorm + MLP head on cached frame features (B, F, D): the mean of the frame scores, as the
    runner pools them. Shares its modules with the net, so training it trains the net's head."""

    def __init__(self, net: VideoNet) -> None:
        super().__init__()
        self.norm, self.quality = net.norm, net.quality  # registered here, so only the head trains
        self.score = net.head

    def forward(self, feats: Tensor) -> Tensor:
        b, f = feats.shape[:2]
        return self.score(self.norm(feats.flatten(0, 1))).view(b, f).mean(1)


def split_items(items: list[Item]) -> tuple[list[Item], list[Item]]:
    """Training and validation items: a fixed fifth of the contents validates (none for sets of one content)."""
    val = [validation_share(i.content, VAL_SHARE) for i in items]
    if len(set(val)) < 2:
        val = [False] * len(items)
    return [i for i, v in zip(items, val) if not v], [i for i, v in zip(items, val) if v]


def start_net(recipe: VideoRecipe, hidden: int, backbone: str | None = None) -> tuple[VideoNet, str]:
    """A fresh video net on the pretrained shared backbone (``backbone`` file, else the shipped one)."""
    state, sha = load_weights("backbone", backbone)
    cfg = state["config"]
    net = VideoNet(float(cfg["width"]), tuple(cfg["blocks"]), hidden, full_reference=recipe.full_reference)
    net.backbone.load_state_dict({k: v.float() for k, v in state["backbone"].items()})
    net.freeze_backbone()
    return net, sha


def train(name: str, out: str | Path, set_dir: str | Path, config: TrainConfig, hidden: int = SETTINGS["hidden"],
          backbone: str | None = None, run_dir: str | Path | None = None, command: str = "") -> Fit:
    """Train video model ``name``'s head on the set in ``set_dir`` and write its weight file to ``out``."""
    if name not in RECIPES:
        raise ValueError(f"no video recipe {name!r}; choose one of {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    manifest = read_manifest(set_dir)
    items = [i for i in manifest.select("train") if recipe.label in i.labels]
    if not items:
        raise ValueError(f"{manifest.csv}: no train rows with a {recipe.label!r} label; build the full set with "
                         f"`dqa data build --suite {recipe.set}` (a --test-only build has no train rows)")
    seed_everything(config.seed)
    net, backbone_sha = start_net(recipe, hidden, backbone)
    fr = "fr-distances" if recipe.full_reference else "nr"
    key = hashlib.sha256(f"{manifest.sha256}|{backbone_sha}|{fr}|{FRAMES}|{PASSES}|{SIDE}|{FEATURES_VERSION}".encode())
    run = Path(run_dir) if run_dir else manifest.root.parent.parent / "runs" / name
    train_items, val_items = split_items(items)
    feats_dir = run / f"features-{key.hexdigest()[:12]}"  # one per set, backbone and view recipe
    feats = extract(net, train_items + val_items, feats_dir, config.progress)
    targets = [i.labels[recipe.label] for i in train_items + val_items]
    n = len(train_items)
    train_set = CachedClips(feats[:n], targets[:n], train=True, seed=config.seed)
    val_set = CachedClips(feats[n:], targets[n:], train=False) if val_items else None
    head = PooledHead(net)
    settings = {k: v for k, v in asdict(config).items() if k not in ("progress", "max_minutes", "device", "workers")}
    checkpoint = feats_dir / f"head-{hashlib.sha256(repr((hidden, settings)).encode()).hexdigest()[:12]}.pt"
    fit = Trainer(head, FinetuneLoss(), train_set, val_set, config, checkpoint).fit()
    training = {"set": manifest.root.name, "set_sha256": manifest.sha256, "label": recipe.label,
                "backbone_sha256": backbone_sha, "backbone": "frozen", "frames_per_clip": FRAMES, "passes": PASSES,
                "train_clips": n, "val_clips": len(val_items),
                "train_contents": len({i.content for i in train_items}),
                "val_contents": len({i.content for i in val_items}), "epochs": fit.epochs, "steps": fit.steps,
                "best_epoch": fit.best_epoch, "val_srcc": fit.best_srcc if math.isfinite(fit.best_srcc) else None,
                "stopped": fit.stopped, "train_config": asdict(config)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.export({"command": command, "model": name, **training}), out)
    if out.resolve().parent == weights_dir().resolve():
        record_weights(out.stem, out, {
            "architecture": f"shared ResNet-18-family backbone (frozen) on two {SIDE}x{SIDE} views per frame (fragments + "
                            "whole frame)" + (" of the distorted and the reference frame" if recipe.full_reference
                                              else "") + ", BatchNorm + MLP head per frame, mean pooling "
                            "(suites.video.model.VideoNet); fp16",
            "config": net.config(),
            "recipe": f"dqa data build --suite {recipe.set} && {command}",
            "data_sources": [f"$DQA_DATA/sets/{manifest.root.name} (sha256 {manifest.sha256[:12]}), built by "
                             "suites/video/data.py from common/data/catalogue.csv: Debian and PyPI packages (see the "
                             "catalogue's licence column)", f"weights/backbone.pt (sha256 {backbone_sha[:12]})"],
            "training": training})
    return fit

"""Quality-aware pretraining of the shared backbone (``dqa train backbone``).

Each training sample is one *list*: a pristine crop and its five severities of one degradation
(``common.data.pretrain``). Every image of the list gives two random crops at the same positions
across the list. The objective sums four terms over a batch of lists:

- absolute quality: L1 to the fused teacher label and a PLCC term, on one 0-100 scale across all
  kinds and domains (DESIGN section 5 found absolute targets essential for transfer);
- severity ranking inside each list (margin rank loss on the teacher labels);
- quality-aware contrast: the two crops of one image are positives; every other image in the batch -
  the same content at other severities or under other degradations, and other contents - is a
  negative (InfoNCE on a projection head, after Madhusudana et al., "CONTRIQUE", IEEE TIP 2022).

The weight file keeps the backbone and the quality head (:meth:`QualityNet.export`): the shared
backbone of every suite, and the general ``iqa`` model; the projection head is dropped.
"""
from __future__ import annotations

import hashlib
import logging
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from common.data.manifest import PRISTINE, Item, read_manifest
from common.quality import QualityNet, mlp
from common.weights import record_weights, weights_dir
from common.train.losses import info_nce, l1_loss, plcc_loss, rank_loss
from common.train.trainer import Fit, TrainConfig, Trainer, seed_everything, validation_share

log = logging.getLogger(__name__)

# The shipped recipe (docs/backbone.md tells how it was chosen) and the tiny network of `dqa train backbone --small`.
RECIPE = {"width": 0.375, "crop": 128, "epochs": 12, "batch": 8, "lr": 3e-4}
SMALL = {"width": 0.125, "crop": 64, "epochs": 1, "batch": 2, "lr": 3e-4}

def severity_lists(items: list[Item], label: str = "fused") -> list[list[Item]]:
    """Group manifest rows into lists of one content x degradation: its pristine first, then the severities
    in order. Lists shorter than the set's longest (an unfinished content) are left out."""
    pristine = {i.content: i for i in items if i.kind == PRISTINE}
    lists: dict[tuple[str, str], list[Item]] = defaultdict(list)
    for i in items:
        if i.kind != PRISTINE and i.content in pristine and label in i.labels:
            lists[(i.content, i.kind)].append(i)
    full = max((len(rows) for rows in lists.values()), default=0)
    out = [[pristine[content], *sorted(rows, key=lambda i: i.level)]
           for (content, _), rows in sorted(lists.items()) if len(rows) == full]
    if len(out) < len(lists):
        log.warning("left out %d incomplete severity lists", len(lists) - len(out))
    return out


class DecodedImages:
    """The images of a set decoded once into one flat uint8 file on disk (read as a ``numpy`` memmap), so
    training reads crops instead of decoding six PNGs per list at every step (decoding took about half the
    CPU time).

    The file is named by a hash of the image paths and sizes and rebuilt when they change; it is written to a
    temporary name and renamed when complete, so a stopped build starts again cleanly.
    """

    def __init__(self, paths: list[Path], folder: Path, progress: bool = True) -> None:
        self.shapes: dict[Path, tuple[int, int, int]] = {}
        for p in paths:
            with Image.open(p) as img:
                self.shapes[p] = (img.height, img.width, 3)
        sizes = np.array([math.prod(s) for s in self.shapes.values()], dtype=np.int64)
        self.offsets = dict(zip(paths, np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()))
        key = hashlib.sha1(repr(list(self.shapes.items())).encode()).hexdigest()[:16]
        file = folder / f"decoded-{key}.npy"
        if not file.is_file():
            self._build(file, int(sizes.sum()), progress)
        self.array = np.load(file, mmap_mode="r")

    def _build(self, file: Path, total: int, progress: bool) -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp.npy")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(total,))
        for path, shape in tqdm(self.shapes.items(), desc="decoding the set once", unit="img", disable=not progress):
            start = self.offsets[path]
            out[start:start + math.prod(shape)] = np.asarray(Image.open(path).convert("RGB")).reshape(-1)
        out.flush()
        del out
        tmp.replace(file)

    def __getitem__(self, path: Path) -> np.ndarray:
        shape = self.shapes[path]
        start = self.offsets[path]
        return self.array[start:start + math.prod(shape)].reshape(shape)


class SeverityLists(Dataset):
    """Lists of one content x degradation as uint8 crops ``(n, 2, 3, crop, crop)`` with labels ``(n,)``
    (n = 6 in a full set: the pristine and five severities).

    Crop positions come from (seed, epoch, list index), so an epoch reads the same crops after a resume.
    """

    def __init__(self, lists: list[list[Item]], crop: int = RECIPE["crop"], seed: int = 0, label: str = "fused",
                 decoded: DecodedImages | None = None) -> None:
        if not lists:
            raise ValueError("no severity lists (a pristine and its graded degradations) in the manifest")
        self.lists, self.crop, self.seed, self.label, self.epoch = lists, crop, seed, label, 0
        self.decoded = decoded

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lists)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        rows = self.lists[index]
        imgs = ([self.decoded[r.path] for r in rows] if self.decoded is not None
                else [np.asarray(Image.open(r.path).convert("RGB")) for r in rows])
        h, w = imgs[0].shape[:2]
        if min(h, w) < self.crop:
            raise ValueError(f"{rows[0].path}: {w}x{h} is smaller than the {self.crop}-pixel training crop")
        rng = np.random.default_rng((self.seed, self.epoch, index))
        pos = [(rng.integers(0, h - self.crop + 1), rng.integers(0, w - self.crop + 1)) for _ in range(2)]
        flip = rng.random() < 0.5
        views = np.stack([np.stack([im[y:y + self.crop, x:x + self.crop] for y, x in pos]) for im in imgs])
        if flip:
            views = views[:, :, :, ::-1]
        return {"views": torch.from_numpy(np.ascontiguousarray(views)).permute(0, 1, 4, 2, 3),
                "label": torch.tensor([r.labels.get(self.label, 100.0) for r in rows], dtype=torch.float32)}


class PretrainNet(QualityNet):
    """:class:`~common.quality.QualityNet` plus a projection head for the contrastive term."""

    def __init__(self, width: float = RECIPE["width"], embed: int = 128) -> None:
        super().__init__(width=width)
        self.project = mlp(self.backbone.feature_dim, 256, embed)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """RGB batch in [0, 1] -> (quality (B,), embedding (B, embed))."""
        f = self.features(x)
        return self.head(f), self.project(f)


@dataclass
class PretrainLoss:
    """The weighted objective of the module docstring; ``tau`` is the InfoNCE temperature."""

    l1: float = 1 / 10  # per label point: an error of 10 points costs 1
    plcc: float = 1.0
    rank: float = 1 / 5
    # An auxiliary only: at 0.5 the InfoNCE term, whose negatives include other contents, drove the backbone
    # to tell contents apart; after 2 epochs the quality head gave one score per content whatever the severity
    # of blur, noise or compression (validation SRCC 0.47).
    contrast: float = 0.1
    margin: float = 2.0  # rank margin in label points
    tau: float = 0.1

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        views, label = batch["views"], batch["label"]
        g, n = label.shape
        q, z = model(views.flatten(0, 2).float() / 255)
        q, z = q.view(g, n, 2), z.view(g, n, 2, -1)
        target = label[:, :, None].expand(g, n, 2).reshape(-1)
        groups = torch.arange(g, device=label.device)[:, None, None].expand(g, n, 2).reshape(-1)
        terms = {"l1": l1_loss(q.reshape(-1), target), "plcc": plcc_loss(q.reshape(-1), target),
                 "rank": rank_loss(q.reshape(-1), target, groups=groups, margin=self.margin, min_gap=1.0),
                 "contrast": 0.5 * (info_nce(z[:, :, 0].flatten(0, 1), z[:, :, 1].flatten(0, 1), self.tau)
                                    + info_nce(z[:, :, 1].flatten(0, 1), z[:, :, 0].flatten(0, 1), self.tau))}
        total = sum(getattr(self, k) * v for k, v in terms.items())
        return total, {k: v.item() for k, v in terms.items()}  # type: ignore[return-value]

    def predict(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        views, label = batch["views"], batch["label"]
        q, _ = model(views[:, :, 0].flatten(0, 1).float() / 255)
        return q, label.flatten()


def collate(samples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


VAL_SHARE = 10  # one training content in ten validates (early stopping); the held-out contents stay unseen


def datasets(set_dir: str | Path, crop: int, seed: int) -> tuple[SeverityLists, SeverityLists | None]:
    """Training and validation lists, both from the set's train split (validation: a fixed tenth of its
    contents), reading crops from a :class:`DecodedImages` file in the set's ``cache`` folder. The held-out
    (test) contents are never read, so the probe and ``dqa eval`` measure on unseen content."""
    manifest = read_manifest(set_dir)
    lists = severity_lists([i for i in manifest.items if i.split == "train"])
    is_val = [validation_share(x[0].content, VAL_SHARE) for x in lists]
    if len(set(is_val)) < 2:  # tiny sets: every list trains, none validates
        is_val = [False] * len(lists)
    train = [x for x, v in zip(lists, is_val) if not v]
    val = [x for x, v in zip(lists, is_val) if v]
    log.info("%s: %d training lists, %d validation lists", manifest.csv, len(train), len(val))
    decoded = DecodedImages(list(dict.fromkeys(r.path for rows in lists for r in rows)), Path(set_dir) / "cache")
    return (SeverityLists(train, crop, seed, decoded=decoded),
            SeverityLists(val, crop, seed, decoded=decoded) if val else None)


def pretrain(set_dir: str | Path, out: str | Path, checkpoint: str | Path | None, width: float = RECIPE["width"],
             crop: int = RECIPE["crop"], config: TrainConfig | None = None, command: str = "") -> Fit:
    """Train :class:`PretrainNet` on a ``backbone`` set and export the backbone (and quality head) to ``out``."""
    config = config or TrainConfig()
    train, val = datasets(set_dir, crop, config.seed)
    seed_everything(config.seed)
    model = PretrainNet(width)
    fit = Trainer(model, PretrainLoss(), train, val, config, checkpoint, collate=collate).fit()
    manifest = read_manifest(set_dir)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    val_srcc = fit.best_srcc if math.isfinite(fit.best_srcc) else None
    training = {"set": manifest.root.name, "set_sha256": manifest.sha256, "crop": crop, "train_lists": len(train),
                "val_lists": len(val) if val else 0, "epochs": fit.epochs, "steps": fit.steps,
                "best_epoch": fit.best_epoch, "val_srcc": val_srcc, "stopped": fit.stopped,
                "minutes": round(fit.history[-1]["minutes"], 1) if fit.history else None,
                "train_config": asdict(config)}
    torch.save(model.export({"command": command, **training}), out)
    if out.resolve().parent == weights_dir().resolve():
        record_weights(out.stem, out, {
            "architecture": f"ResNet-18-family backbone, width {model.backbone.width}, + BatchNorm + MLP quality head "
                            "(common.quality.QualityNet); fp16",
            "config": {"width": model.backbone.width, "blocks": list(model.backbone.blocks), "hidden": model.hidden},
            "recipe": f"dqa data build --suite backbone && {command}",
            "data_sources": [f"$DQA_DATA/sets/{manifest.root.name} (sha256 {manifest.sha256[:12]}), built by "
                             "common/data/pretrain.py from common/data/catalogue.csv: Debian and PyPI packages "
                             "(see the catalogue's licence column)"],
            "training": training})
    return fit

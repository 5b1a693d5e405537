"""``dqa finetune``: fit a shipped quality network to a user's labelled images or videos.

Labels come from a ``path,mos[,ref]`` CSV or a public data set's folder (:mod:`common.train.datasets`);
rows that cannot be used - a missing or unreadable file, a score that is not a number - are reported
and left out, and the rest trains. Scores are mapped linearly from the source's scale to 0-100. Without
``--val``, a fixed fifth of the rows (grouped by reference, so distortions of one source stay together)
is held out for validation and early stopping. Each training step sees one frame of each file (a random
one of a video's uniform frames, a new one every epoch) as random crops; validation scores the middle
frame as ``dqa score`` would. The output file has the same form as the shipped weights, so
``dqa score --suite S --weights my.pt`` uses it.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from common.errors import DqaError
from common.media import UniformK, media_kind, probe_video, read_media
from common.quality import QualityModel
from common.train.datasets import LabelRow, Labels, Problem
from common.train.losses import l1_loss, plcc_loss, rank_loss
from common.train.trainer import Fit, TrainConfig, Trainer, validation_share

log = logging.getLogger(__name__)

FRAMES = 4  # uniform frames of a video that training draws from
VAL_SHARE = 5  # one group in five is held out when no validation file is given


def frame_indices(path: Path, k: int = FRAMES) -> list[int]:
    """Indices of ``k`` uniform frames of a video (``[0]`` for an image); raises for unreadable media."""
    if media_kind(path) == "image":
        return [0]
    info = probe_video(path)
    if info.n_frames < 1:
        raise DqaError(f"{path}: the video has no frames")
    return UniformK(k).indices(info.n_frames, info.fps)


def readable(labels: Labels) -> tuple[list[tuple[LabelRow, list[int]]], list[Problem]]:
    """Rows whose media (and reference) can be opened, with their frame indices, and a problem per other row."""
    keep, problems = [], []
    for row in labels.rows:
        try:
            idx = frame_indices(row.path)
            if media_kind(row.path) == "image":
                next(read_media(row.path))
        except Exception as exc:  # any decoder failure makes the row unusable, not the run
            problems.append(Problem(str(row.path), f"cannot be read ({exc}); left out"))
            continue
        keep.append((row, idx))
    return keep, problems


class LabelledMedia(Dataset):
    """Training or validation samples: views of one frame of each file and its 0-100 target."""

    def __init__(self, model: QualityModel, rows: list[tuple[LabelRow, list[int]]], scale: tuple[float, float],
                 train: bool, seed: int = 0) -> None:
        lo, hi = scale
        if not hi > lo:
            raise ValueError(f"the label scale must have max > min, got {scale}")
        self.model, self.rows, self.train, self.seed, self.epoch = model, rows, train, seed, 0
        self.targets = [100 * (r.mos - lo) / (hi - lo) for r, _ in rows]
        self.states: list[dict[str, Any]] = [{} for _ in rows]  # per file, as the runner's: Model.begin's, once
        for (row, _), state in zip(rows, self.states):
            try:
                model.begin(row.path, state)
            except Exception as exc:  # e.g. a stream that cannot be demuxed: its frames still train, without it
                log.warning("%s: %s; training it without its file-level input", row.path, exc)
                state.clear()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        row, idx = self.rows[i]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        k = idx[int(rng.integers(len(idx)))] if self.train else idx[len(idx) // 2]
        frame = next(read_media(row.path, [k])).data
        state = dict(self.states[i])
        views = self.model.train_views(frame, rng, state) if self.train else self.model.prepare(frame, None, state)
        return {"views": views, "target": torch.tensor(self.targets[i], dtype=torch.float32)}


@dataclass
class FinetuneLoss:
    """L1 (per 20 label points) + PLCC + a within-batch rank term, on the 0-100 scale; with ``within`` and a batch
    ``group`` per sample, also a rank term with a wider margin inside each group (say, the versions of one
    content)."""

    rank: float = 0.2
    within: float = 0.0

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        pred, target = model(batch["views"]), batch["target"]
        terms = {"l1": l1_loss(pred, target) / 20, "rank": rank_loss(pred, target, margin=1.0, min_gap=2.0)}
        if len(pred) > 1:
            terms["plcc"] = plcc_loss(pred, target)
        if self.within and "group" in batch:
            terms["within"] = rank_loss(pred, target, groups=batch["group"], margin=5.0, min_gap=2.0) / 5
        total = terms["l1"] + terms.get("plcc", 0) + self.rank * terms["rank"] + self.within * terms.get("within", 0)
        return total, {k: v.item() for k, v in terms.items()}  # type: ignore[return-value]

    def predict(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return model(batch["views"]), batch["target"]


def split_rows(rows: list[tuple[LabelRow, list[int]]]) -> tuple[list, list]:
    """A fixed fifth of the reference groups (or files) for validation; everything trains below 5 rows."""
    if len(rows) < VAL_SHARE:
        return rows, []
    key = [str(r.ref or r.path) for r, _ in rows]
    val = [validation_share(k, VAL_SHARE) for k in key]
    if not any(val) or all(val):
        val = [i % VAL_SHARE == 0 for i in range(len(rows))]
    return [r for r, v in zip(rows, val) if not v], [r for r, v in zip(rows, val) if v]


@dataclass
class FinetuneReport:
    """What ``dqa finetune`` did: rows used, problems, validation before and after, and the fit."""

    out: Path
    train_rows: int
    val_rows: int
    problems: list[Problem]
    val_before: dict[str, float]
    fit: Fit

    def summary(self) -> str:
        lines = [f"{self.out}: trained on {self.train_rows} rows, validated on {self.val_rows}; "
                 f"{self.fit.epochs} epochs ({self.fit.stopped})"]
        if self.val_before:
            lines.append(f"validation SRCC {self.val_before['val_srcc']:.3f} before, {self.fit.best_srcc:.3f} after "
                         f"(best epoch {self.fit.best_epoch})")
        if self.problems:
            lines.append(f"{len(self.problems)} rows left out:")
            lines += [f"  {p.where}: {p.message}" for p in self.problems[:20]]
            if len(self.problems) > 20:
                lines.append(f"  ... and {len(self.problems) - 20} more")
        return "\n".join(lines)


def finetune(suite: str, labels: Labels, out: str | Path, val: Labels | None = None, weights: str | None = None,
             freeze_backbone: bool = False, config: TrainConfig | None = None,
             checkpoint: str | Path | None = None, command: str = "") -> FinetuneReport:
    """Fine-tune model ``suite`` (from its shipped weights, or ``weights``) on ``labels``; write ``out``."""
    from common.registry import load_model

    config = config or TrainConfig(epochs=10, batch_size=8, lr=1e-4, warmup_steps=20, patience=3)
    model = load_model(suite, device="cpu", weights=weights)
    if not isinstance(model, QualityModel) or model.mode != "NR":
        raise ValueError(f"model {suite!r} cannot be fine-tuned (only no-reference backbone + head models can)")
    rows, problems = readable(labels)
    problems = [*labels.problems, *problems]
    if val is not None:
        val_rows, val_problems = readable(val)
        problems += [*val.problems, *val_problems]
        train_rows = rows
    else:
        train_rows, val_rows = split_rows(rows)
    if not train_rows:
        raise ValueError("no usable training rows:\n" + "\n".join(f"  {p.where}: {p.message}" for p in problems))
    if len(train_rows) > 1 and len(train_rows) % config.batch_size == 1:
        last = train_rows.pop()
        problems.append(Problem(str(last[0].path), f"left out: {len(train_rows) + 1} training rows in batches of "
                                                    f"{config.batch_size} end in a batch of one, which BatchNorm "
                                                    "cannot train on; another --batch keeps it"))
    for p in problems:
        log.warning("%s: %s", p.where, p.message)
    scale = labels.scale
    model.net.to(memory_format=torch.contiguous_format)  # channels-last weights crash CPU backward in torch 2.13
    if freeze_backbone:
        model.net.freeze_backbone()
    train_set = LabelledMedia(model, train_rows, scale, train=True, seed=config.seed)
    val_set = LabelledMedia(model, val_rows, val.scale if val else scale, train=False) if val_rows else None
    trainer = Trainer(model.net, FinetuneLoss(), train_set, val_set, config, checkpoint)
    before = trainer.validate()
    fit = trainer.fit()
    meta: dict[str, Any] = {"finetuned_from": {"model": suite, "weights_sha256": model.weights_sha256},
                            "labels": labels.source, "scale": list(scale), "train_rows": len(train_rows),
                            "val_rows": len(val_rows), "val_srcc_before": before.get("val_srcc"),
                            "val_srcc": fit.best_srcc, "command": command, "train_config": asdict(config)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.net.export({**model.config, **meta}), out)
    return FinetuneReport(out, len(train_rows), len(val_rows), problems, before, fit)

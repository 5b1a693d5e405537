"""One small training loop for every recipe and for fine-tuning.

A :class:`Task` says how to turn a batch into a loss and into (prediction, label) pairs for validation;
the :class:`Trainer` does the rest: deterministic seeds and data order, AdamW with warm-up and cosine
decay, autocast on CUDA, a checkpoint every few minutes and at each epoch end (resuming mid-epoch at
the same batch), validation SRCC/PLCC after each epoch, early stopping on validation SRCC, the best
weights restored at the end, and a progress bar plus a JSONL log a person can follow.
"""
from __future__ import annotations

import hashlib

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from common.eval.stats import pearson, srcc

log = logging.getLogger(__name__)

Batch = Any


class Task(Protocol):
    """What a recipe tells the trainer: the loss of a batch, and predictions for validation."""

    def loss(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss to minimise and named figures to log."""

    def predict(self, model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
        """Predicted quality and its label for each sample of a validation batch (1-D each)."""


@dataclass
class TrainConfig:
    """Settings of one run; saved in every checkpoint."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float | None = 5.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bfloat16 autocast on CUDA; ignored on CPU
    workers: int = 0
    patience: int = 5  # epochs without a better validation SRCC before stopping
    max_steps: int | None = None  # stop after this many optimiser steps in all (tests, smoke runs)
    max_minutes: float | None = None  # stop (with a checkpoint) after this much training time
    checkpoint_minutes: float = 5.0
    average_from: int | None = None  # end with the mean of the weights of this epoch and every later one
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # recipe settings, kept for provenance


_SCHEDULE_SETTINGS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_steps", "seed")


def validation_share(key: str, share: int) -> bool:
    """Whether ``key`` (a content or reference) is in the fixed one-in-``share`` validation part: by its sha1, so the
    split is the same in every run and on every machine."""
    return hashlib.sha1(key.encode()).digest()[0] % share == 0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The sample order of one epoch: a permutation fixed by (seed, epoch), so a resumed run sees the same."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()


class _Order(Sampler[int]):
    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class Fit:
    """What a finished (or stopped) run reports."""

    epochs: int
    steps: int
    best_epoch: int
    best_srcc: float
    history: list[dict[str, Any]]
    stopped: str  # "epochs", "early stop", "max_steps" or "max_minutes"
    averaged: int = 0  # epochs whose weights were averaged into the final ones (``average_from``)
    averaged_srcc: float = math.nan  # validation SRCC of those averaged weights


class Trainer:
    """Train ``model`` on ``train`` with ``task``, validating on ``val`` (optional) after each epoch.

    ``checkpoint``: a file written every ``checkpoint_minutes`` and at each epoch end (atomically); when it
    exists the run resumes from it. Datasets may define ``set_epoch(epoch)`` to seed their augmentation, and
    ``order(seed, epoch)`` (as long as the dataset, fixed by its arguments) to lay out their batches.
    The run ends with the best validated epoch's weights, or with ``average_from`` the mean of the weights at the
    end of that epoch and every later one (stochastic weight averaging: Izmailov et al., "Averaging weights leads
    to wider optima and better generalization", UAI 2018), which evens out a noisy validation curve.
    A task that is an ``nn.Module`` (say, with :class:`~common.train.losses.UncertaintyWeighting`) has its
    parameters trained and checkpointed with the model's; ``params`` restricts training to a subset
    (e.g. a head on a frozen backbone).
    """

    def __init__(self, model: nn.Module, task: Task, train: Dataset, val: Dataset | None = None,
                 config: TrainConfig | None = None, checkpoint: str | Path | None = None,
                 collate: Callable[[list[Any]], Batch] | None = None,
                 params: Sequence[nn.Parameter] | None = None) -> None:
        from common.registry import resolve_device

        self.cfg = config or TrainConfig()
        if self.cfg.epochs < 1 or self.cfg.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if len(train) == 0:  # type: ignore[arg-type]
            raise ValueError("the training set is empty")
        self.device = resolve_device(self.cfg.device)
        self.model, self.task, self.train, self.val = model.to(self.device), task, train, val
        self.collate = collate
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.task_module = task.to(self.device) if isinstance(task, nn.Module) else None  # e.g. learned loss weights
        if params is None:
            params = [*model.parameters(), *(self.task_module.parameters() if self.task_module else [])]
        trainable = [p for p in params if p.requires_grad]
        if not trainable:
            raise ValueError("nothing to train: every parameter is frozen")
        self.opt = torch.optim.AdamW(trainable, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.steps_per_epoch = math.ceil(len(train) / self.cfg.batch_size)  # type: ignore[arg-type]
        total = self.steps_per_epoch * self.cfg.epochs  # not max_steps: a stopped run resumes on the same schedule
        warm = min(self.cfg.warmup_steps, max(1, total // 10))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total)))))
        self.state: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "elapsed": 0.0, "best_srcc": -math.inf,
                                      "best_epoch": -1, "bad_epochs": 0, "history": []}
        self.best_weights: dict[str, Tensor] | None = None
        self.average: dict[str, Tensor] | None = None

    # --- checkpoints -------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the checkpoint atomically (model, optimiser, schedule, progress, RNG, best weights)."""
        if self.checkpoint is None:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        blob = {"model": self.model.state_dict(), "task": self.task_module.state_dict() if self.task_module else {},
                "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                "state": self.state, "best": self.best_weights, "average": self.average, "config": asdict(self.cfg),
                "rng": {"torch": torch.get_rng_state(), "numpy": json.dumps(_np_state()),
                        "python": json.dumps(random.getstate())}}
        tmp = self.checkpoint.with_suffix(self.checkpoint.suffix + ".tmp")
        torch.save(blob, tmp)
        os.replace(tmp, self.checkpoint)

    def resume(self) -> bool:
        """Load the checkpoint if there is one; True when the run continues from it."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return False
        blob = torch.load(self.checkpoint, map_location=self.device, weights_only=True)
        self.model.load_state_dict(blob["model"])
        if self.task_module is not None:
            self.task_module.load_state_dict(blob["task"])
        self.opt.load_state_dict(blob["opt"])
        self.sched.load_state_dict(blob["sched"])
        self.state, self.best_weights, self.average = blob["state"], blob["best"], blob.get("average")
        changed = {k: (blob["config"].get(k), v) for k, v in asdict(self.cfg).items()
                   if k in _SCHEDULE_SETTINGS and blob["config"].get(k) != v}
        if changed:
            log.warning("%s was written with other settings; continuing with the new ones (%s)", self.checkpoint,
                        ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in changed.items()))
        torch.set_rng_state(blob["rng"]["torch"].cpu())
        _set_np_state(json.loads(blob["rng"]["numpy"]))
        random.setstate(_tuplify(json.loads(blob["rng"]["python"])))
        log.info("resumed from %s at epoch %d, batch %d (step %d)", self.checkpoint, self.state["epoch"] + 1,
                 self.state["batch"], self.state["step"])
        return True

    # --- the loop ----------------------------------------------------------------------------------
    def _loader(self, data: Dataset, indices: Sequence[int]) -> DataLoader:
        return DataLoader(data, batch_size=self.cfg.batch_size, sampler=_Order(indices), num_workers=self.cfg.workers,
                          collate_fn=self.collate)

    def _autocast(self) -> Any:
        enabled = self.cfg.amp and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def validate(self) -> dict[str, float]:
        """SRCC and PLCC of the model's predictions on the validation set."""
        if self.val is None:
            return {}
        self.model.eval()
        preds, labels = [], []
        with torch.inference_mode(), self._autocast():
            for batch in self._loader(self.val, range(len(self.val))):  # type: ignore[arg-type]
                p, y = self.task.predict(self.model, _to(batch, self.device))
                preds.append(p.float().cpu())
                labels.append(y.float().cpu())
        p, y = torch.cat(preds).numpy(), torch.cat(labels).numpy()
        return {"val_srcc": srcc(p, y), "val_plcc": pearson(p, y)}

    def fit(self) -> Fit:
        """Train until the epochs are done, early stopping, or a step/time limit; then restore the best weights."""
        seed_everything(self.cfg.seed)
        self.resume()
        cfg, st = self.cfg, self.state
        started, last_save = time.monotonic() - st["elapsed"], time.monotonic()
        stopped = "epochs"
        if self.val is not None and st["bad_epochs"] >= cfg.patience:  # a finished run, resumed: it stays stopped
            stopped = "early stop"
        elif cfg.max_steps and st["step"] >= cfg.max_steps:
            stopped = "max_steps"
        while st["epoch"] < cfg.epochs and stopped == "epochs":
            epoch = st["epoch"]
            if hasattr(self.train, "set_epoch"):
                self.train.set_epoch(epoch)
            order = (self.train.order(cfg.seed, epoch) if hasattr(self.train, "order")  # type: ignore[attr-defined]
                     else epoch_order(len(self.train), cfg.seed, epoch))[st["batch"] * cfg.batch_size:]  # type: ignore[arg-type]
            bar = tqdm(total=self.steps_per_epoch, initial=st["batch"], desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not cfg.progress, dynamic_ncols=True, leave=False)
            running: dict[str, float] = {}
            self.model.train()
            for batch in self._loader(self.train, order):
                with self._autocast():
                    loss, figures = self.task.loss(self.model, _to(batch, self.device))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss.item()} at step {st['step']}; lower --lr")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_([p for g in self.opt.param_groups for p in g["params"]], cfg.grad_clip)
                self.opt.step()
                self.sched.step()
                st["step"] += 1
                st["batch"] += 1
                figures = {"loss": loss.item(), **figures}
                running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in figures.items()}
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()})
                st["elapsed"] = time.monotonic() - started
                if cfg.max_steps and st["step"] >= cfg.max_steps:
                    stopped = "max_steps"
                elif cfg.max_minutes and st["elapsed"] >= 60 * cfg.max_minutes:
                    stopped = "max_minutes"
                if stopped != "epochs":
                    break
                if time.monotonic() - last_save >= 60 * cfg.checkpoint_minutes:
                    self.save()
                    last_save = time.monotonic()
            bar.close()
            if stopped != "epochs" and st["batch"] < self.steps_per_epoch:
                self.save()
                break
            st["epoch"], st["batch"] = epoch + 1, 0
            row = {"epoch": epoch + 1, "step": st["step"], "minutes": round(st["elapsed"] / 60, 2),
                   **{f"train_{k}": round(v, 5) for k, v in running.items()}, **self.validate()}
            st["history"].append(row)
            self._log(row)
            if self._better(row):
                st["best_srcc"], st["best_epoch"], st["bad_epochs"] = row.get("val_srcc", -math.inf), epoch + 1, 0
                self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            else:
                st["bad_epochs"] += 1
            if cfg.average_from and epoch + 1 >= cfg.average_from:
                self._accumulate()
            self.save()
            last_save = time.monotonic()
            if self.val is not None and st["bad_epochs"] >= cfg.patience:
                stopped = "early stop"
                break
            if stopped != "epochs":
                break
        final = self.average if self.average is not None else self.best_weights
        if final is not None:
            self.model.load_state_dict(final)
        averaged_srcc = self.validate().get("val_srcc", math.nan) if self.average is not None else math.nan
        return Fit(st["epoch"], st["step"], st["best_epoch"], st["best_srcc"], list(st["history"]), stopped,
                   st.get("averaged", 0), averaged_srcc)

    def _accumulate(self) -> None:
        """Fold the current weights into the running mean (integer buffers keep their latest value)."""
        n = self.state.get("averaged", 0)
        current = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.average is None:
            self.average = current
        else:
            for k, v in current.items():
                if v.is_floating_point():
                    self.average[k] += (v - self.average[k]) / (n + 1)
                else:
                    self.average[k] = v
        self.state["averaged"] = n + 1

    def _better(self, row: dict[str, Any]) -> bool:
        if self.val is None:
            return True  # without validation the latest weights are the best we know
        s = row.get("val_srcc", math.nan)
        return bool(np.isfinite(s) and s > self.state["best_srcc"])

    def _log(self, row: dict[str, Any]) -> None:
        log.info("epoch %d: %s", row["epoch"], ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                                           if k != "epoch" and isinstance(v, float)))
        if self.checkpoint is not None:
            with open(self.checkpoint.with_suffix(".log.jsonl"), "a") as f:
                f.write(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                    for k, v in row.items()}) + "\n")


def _to(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def _np_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": keys.tolist(), "pos": pos, "has_gauss": has_gauss, "cached": cached}


def _set_np_state(s: dict[str, Any]) -> None:
    np.random.set_state((s["name"], np.array(s["keys"], dtype=np.uint32), s["pos"], s["has_gauss"], s["cached"]))


def _tuplify(x: Any) -> Any:
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x

"""Base class of every scoring model: per-frame preparation on the CPU, batched forward, per-file finalisation.

The runner calls :meth:`Model.begin` once per file and :meth:`Model.prepare` once per frame in decode
workers, stacks prepared frames of any files that share a shape, calls :meth:`Model.forward` on the
device, and hands each file's per-frame outputs to :meth:`Model.finalize`. This split is what lets
frames of many files share one batch while memory stays bounded. A prepared frame is a tensor, or a
tuple of tensors (say, pixel views and a file's side information) that batch element by element.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Union

import numpy as np
import torch

from common.media import AllFrames, TemporalSampler
from common.result import Result

Prepared = Union[torch.Tensor, tuple[torch.Tensor, ...]]  # one prepared frame; batches have the same structure


def prepared_shape(x: Prepared) -> tuple:
    """What frames must share to batch together: the shape of each element."""
    return tuple(x.shape) if isinstance(x, torch.Tensor) else tuple(tuple(t.shape) for t in x)


def prepared_nbytes(x: Prepared) -> int:
    return x.nbytes if isinstance(x, torch.Tensor) else sum(t.nbytes for t in x)


def stack_prepared(items: Sequence[Prepared]) -> Prepared:
    """A batch of prepared frames of one shape: stacked tensors, or a tuple of stacked elements."""
    if isinstance(items[0], torch.Tensor):
        return torch.stack(items)  # type: ignore[arg-type]
    return tuple(torch.stack(parts) for parts in zip(*items))


def main_tensor(x: Prepared) -> torch.Tensor:
    """The first (pixel) element of a prepared frame or batch, which sets the batch size."""
    return x if isinstance(x, torch.Tensor) else x[0]


class Model:
    """A registered quality model. Subclasses set the class attributes and implement prepare/forward."""

    name: ClassVar[str]
    mode: ClassVar[str]  # "NR" or "FR"
    inputs: ClassVar[tuple[str, ...]] = ("image", "video")
    higher_better: ClassVar[bool] = True
    score_range: ClassVar[tuple[float, float]] = (0.0, 100.0)
    metric: ClassVar[str] = "score"  # per-frame metric name in VMAF-shaped JSON
    default_pooling: ClassVar[str] = "mean"
    max_batch: ClassVar[int] = 32
    batch_pixels: ClassVar[int] = 1 << 23  # about four 1080p frames per batch
    channels_last: ClassVar[bool] = False
    autocast: ClassVar[bool] = False  # mixed precision on CUDA (neural models)
    consecutive_frames: ClassVar[bool] = False  # temporal features that need every frame, in order
    sizes_own_reference: ClassVar[bool] = False  # FR: prepare gets the reference at its own size and matches sizes
    pixels: ClassVar[str] = "rgb"  # what prepare receives: "rgb" (HxWx3 uint8/uint16) or "luma" (HxW float32 0-255)
    map_tile: ClassVar[int | None] = None  # side of the tiles a quality map scores (common.maps); None: no map
    context_frames: ClassVar[int] = 0  # video frames before each sampled one that the runner decodes for ``observe``

    def __init__(self, device: str | torch.device = "cpu", weights_sha256: str | None = None) -> None:
        self.device = torch.device(device)
        self.weights_sha256 = weights_sha256
        self.sampler: TemporalSampler = AllFrames()
        self.pooling = self.default_pooling

    def begin(self, media: Path | np.ndarray, state: dict[str, Any]) -> None:
        """Per-file setup before its first frame, in ``state`` (e.g. read the container's side information)."""

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> Prepared:
        """Turn one decoded frame (and its reference frame for FR), as ``pixels`` says, into a CPU tensor (or a
        tuple of them).

        ``state`` is private to one file and lives across its frames, in decode order.
        """
        raise NotImplementedError

    def observe(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> None:
        """A context frame (see ``context_frames``), decoded just before the sampled frame(s) it precedes and not
        scored: update ``state`` (e.g. keep it for a motion measure). Images and a video's first frame have none."""

    def forward(self, batch: Prepared) -> torch.Tensor:
        """Per-frame outputs (B, ...) for a batch of prepared frames already on ``self.device``."""
        raise NotImplementedError

    def finalize(self, outputs: torch.Tensor) -> tuple[np.ndarray, dict[str, Any]]:
        """Per-frame scores (T,) and file-level extras from the outputs of one file, in frame order."""
        return outputs.reshape(len(outputs), -1)[:, 0].double().numpy(), {}

    def map_frame(self, frame: np.ndarray) -> np.ndarray:
        """The frame at the scale :mod:`common.maps` cuts its ``map_tile`` tiles from (as ``prepare`` would see it)."""
        return frame

    def batch_size(self, item_shape: torch.Size) -> int:
        """How many prepared items of this shape go into one forward call."""
        pixels = max(1, int(np.prod(item_shape[-2:])) * max(1, int(np.prod(item_shape[:-3]))))
        return max(1, min(self.max_batch, self.batch_pixels // pixels))

    def to(self, device: str | torch.device) -> Model:
        """Move the model to a device; neural subclasses extend this to move their network."""
        self.device = torch.device(device)
        return self

    def score(self, media: str | Path | np.ndarray, ref: str | Path | np.ndarray | None = None, **options: Any) -> Result:
        """Score one image or video (a path, an HxWx3 image array or a TxHxWx3 clip array)."""
        from common.runner import score_one

        return score_one(self, media, ref=ref, **options)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.mode} on {self.device}>"

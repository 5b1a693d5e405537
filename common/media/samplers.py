"""Temporal samplers (which frames to decode) and spatial samplers (how a frame becomes a fixed-size input)."""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)


class TemporalSampler(Protocol):
    """Chooses frame indices for a video of n_frames at fps; str() gives the spec that `parse_sampler` reads."""

    def indices(self, n_frames: int, fps: float) -> list[int]: ...

    def __str__(self) -> str: ...


def _positive(name: str, value: float) -> None:
    """ValueError unless value > 0."""
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


def _positive_int(name: str, value: int) -> None:
    """TypeError unless value is an int (not a bool), ValueError unless it is > 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    _positive(name, value)


@dataclass(frozen=True)
class AllFrames:
    """Every frame."""

    def indices(self, n_frames: int, fps: float) -> list[int]:
        """All indices 0..n_frames-1."""
        return list(range(n_frames))

    def __str__(self) -> str:
        return "all"


@dataclass(frozen=True)
class EveryNth:
    """Every n-th frame, starting with the first."""

    n: int

    def __post_init__(self) -> None:
        _positive_int("EveryNth step", self.n)

    def indices(self, n_frames: int, fps: float) -> list[int]:
        """0, n, 2n, ... below n_frames."""
        return list(range(0, n_frames, self.n))

    def __str__(self) -> str:
        return f"every:{self.n}"


@dataclass(frozen=True)
class UniformK:
    """k frames spread evenly: the centre frame of each of k equal segments (all frames when k >= n_frames)."""

    k: int

    def __post_init__(self) -> None:
        _positive_int("UniformK count", self.k)

    def indices(self, n_frames: int, fps: float) -> list[int]:
        """Centres of k equal segments of [0, n_frames)."""
        if self.k >= n_frames:
            return list(range(n_frames))
        return [int((i + 0.5) * n_frames / self.k) for i in range(self.k)]

    def __str__(self) -> str:
        return f"uniform:{self.k}"


@dataclass(frozen=True)
class PerSecond:
    """`rate` frames per second of video: the centre frame of each 1/rate-second interval."""

    rate: float

    def __post_init__(self) -> None:
        _positive("PerSecond rate", self.rate)

    def indices(self, n_frames: int, fps: float) -> list[int]:
        """Frames at times (i + 0.5) / rate, all frames when rate >= fps."""
        _positive("frame rate", fps)
        if self.rate >= fps:
            return list(range(n_frames))
        step = fps / self.rate
        return [int((i + 0.5) * step) for i in range(math.ceil(n_frames / step - 0.5))]

    def __str__(self) -> str:
        return f"fps:{self.rate:g}"


@dataclass(frozen=True)
class UniformKeyframes:
    """k evenly spread frames, each moved to the nearest keyframe, so that only keyframes need decoding.

    A keyframe decodes on its own, without the frames before it in its group of pictures, which makes sparse
    sampling of long-GOP video several times cheaper than :class:`UniformK` (DESIGN section 7). When the clip has
    fewer than k keyframes (long GOPs) or they are not known (raw video, arrays), it falls back to
    :class:`UniformK`'s positions, so a clip is never sampled more thinly than k frames.
    """

    k: int
    needs_keyframes: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _positive_int("UniformKeyframes count", self.k)

    def indices(self, n_frames: int, fps: float, keyframes: Sequence[int] | None = None) -> list[int]:
        """Nearest keyframes (sorted) to the centres of k equal segments, or those centres themselves."""
        targets = UniformK(self.k).indices(n_frames, fps)
        keys = sorted(k for k in (keyframes or ()) if 0 <= k < n_frames)
        if len(keys) < min(self.k, n_frames):
            return targets
        picked = set()
        for t in targets:
            i = bisect.bisect_left(keys, t)
            near = [keys[j] for j in (i - 1, i) if 0 <= j < len(keys)]
            picked.add(min(near, key=lambda k: (abs(k - t), k)))
        return sorted(picked)

    def __str__(self) -> str:
        return f"keyframes:{self.k}"


def sample_indices(sampler: TemporalSampler, n_frames: int, fps: float,
                   keyframes: Callable[[], Sequence[int] | None] | None = None) -> list[int]:
    """The sampler's frame indices; ``keyframes`` (called only for samplers that need keyframes) lists them."""
    if getattr(sampler, "needs_keyframes", False):
        return sampler.indices(n_frames, fps, keyframes() if keyframes else None)  # type: ignore[call-arg]
    return sampler.indices(n_frames, fps)


_SAMPLER_FORMS = ('"all", "every:N" (every N-th frame), "uniform:K" (K evenly spread frames), "keyframes:K" (the '
                  'keyframes nearest to K evenly spread frames), "fps:R" (R per second)')


def parse_sampler(spec: str) -> TemporalSampler:
    """Build a temporal sampler from a spec such as "all", "every:5", "uniform:8", "keyframes:8" or "fps:2"."""
    name, _, arg = spec.strip().lower().partition(":")
    try:
        if name == "all" and not arg:
            return AllFrames()
        if name == "every":
            return EveryNth(int(arg))
        if name == "uniform":
            return UniformK(int(arg))
        if name == "keyframes":
            return UniformKeyframes(int(arg))
        if name == "fps":
            return PerSecond(float(arg))
    except (ValueError, TypeError) as e:
        raise ValueError(f"invalid sampler {spec!r} ({e}); use {_SAMPLER_FORMS}") from None
    raise ValueError(f"unknown sampler {spec!r}; use {_SAMPLER_FORMS}")


def to_tensor(data: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 or uint16 RGB array -> float32 (3, H, W) tensor in [0, 1]."""
    if data.ndim != 3 or data.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {data.shape}")
    scales = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
    if data.dtype not in scales:
        raise TypeError(f"expected a uint8 or uint16 array, got {data.dtype}")
    return torch.from_numpy(np.ascontiguousarray(data.transpose(2, 0, 1), dtype=np.float32)).div_(scales[data.dtype])


def rgb_to_luma(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB -> (..., 1, H, W) luma with BT.601 weights 0.299/0.587/0.114."""
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"expected (..., 3, H, W) RGB, got shape {tuple(x.shape)}")
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(-3, keepdim=True)


def rgb_array_to_luma(data: np.ndarray) -> np.ndarray:
    """HxWx3 uint8/uint16 RGB array -> HxW float32 BT.601 luma on the 0-255 scale."""
    if data.ndim != 3 or data.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB array, got shape {data.shape}")
    scale = 255.0 / 65535.0 if data.dtype == np.uint16 else 1.0
    w = np.asarray(_LUMA, dtype=np.float32) * np.float32(scale)
    return data.astype(np.float32) @ w


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """(h, w) from an int (square) or a pair; ValueError for non-positive sizes."""
    h, w = (size, size) if isinstance(size, int) else size
    if h <= 0 or w <= 0:
        raise ValueError(f"sizes must be positive, got {size!r}")
    return int(h), int(w)


def _check_image(x: torch.Tensor) -> None:
    """ValueError unless x is a (C, H, W) or (N, C, H, W) tensor."""
    if x.ndim not in (3, 4):
        raise ValueError(f"expected a (C, H, W) or (N, C, H, W) tensor, got shape {tuple(x.shape)}")


def resize(x: torch.Tensor, size: int | tuple[int, int], keep_aspect: bool = True) -> torch.Tensor:
    """Antialiased bilinear resize of (C,H,W) or (N,C,H,W).

    int size: the shorter side becomes `size` (square size x size if not keep_aspect). (h, w): exactly that
    size if not keep_aspect, else the largest aspect-preserving size that fits inside it.
    """
    _check_image(x)
    h, w = x.shape[-2:]
    if isinstance(size, int):
        _positive("resize size", size)
        s = size / min(h, w)
        out = (max(1, round(h * s)), max(1, round(w * s))) if keep_aspect else (size, size)
    else:
        th, tw = _pair(size)
        s = min(th / h, tw / w)
        out = (max(1, round(h * s)), max(1, round(w * s))) if keep_aspect else (th, tw)
    if out == (h, w):
        return x
    y = F.interpolate(x[None] if x.ndim == 3 else x, size=out, mode="bilinear", align_corners=False,
                      antialias=True)
    return y[0] if x.ndim == 3 else y


def _pad_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pad (replicating the border) so that the frame is at least h x w, centred."""
    ph, pw = max(0, h - x.shape[-2]), max(0, w - x.shape[-1])
    if not ph and not pw:
        return x
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")


def center_crop(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Central h x w crop of (C,H,W) or (N,C,H,W); frames smaller than the crop are padded by replication first."""
    _check_image(x)
    h, w = _pair(size)
    x = _pad_to(x, h, w)
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., top:top + h, left:left + w]


def grid_crops(x: torch.Tensor, size: int, n: int) -> torch.Tensor:
    """n square crops (n, C, size, size) of a (C,H,W) frame, rows of crops spread evenly over the whole frame."""
    if x.ndim != 3:
        raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(x.shape)}")
    _positive("number of crops", n)
    _positive("crop size", size)
    x = _pad_to(x, size, size)
    h, w = x.shape[-2:]
    rows = min(n, max(1, round(math.sqrt(n * h / w))))
    counts = [n // rows + (r < n % rows) for r in range(rows)]

    def spread(count: int, room: int) -> list[int]:
        return [room // 2] if count == 1 else [round(i * room / (count - 1)) for i in range(count)]

    crops = [x[:, top:top + size, left:left + size]
             for top, count in zip(spread(rows, h - size), counts) for left in spread(count, w - size)]
    return torch.stack(crops)


def fragments(x: torch.Tensor, grid: int = 7, patch: int = 32,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Grid mini-patch sampling (Wu et al., "FAST-VQA", ECCV 2022): (C, grid*patch, grid*patch) from (C,H,W).

    The frame is split into grid x grid cells; one native-resolution patch x patch mini-patch is taken per
    cell (the cell centre without a generator, a uniformly random position inside the cell with one) and the
    patches are stitched in place. Frames smaller than grid*patch are first upscaled just enough. Pass
    generators with the same seed to use the same positions on every frame of a clip. Also accepts (N,C,H,W).
    """
    _check_image(x)
    _positive("fragment grid", grid)
    _positive("fragment patch size", patch)
    need = grid * patch
    h, w = x.shape[-2:]
    if min(h, w) < need:
        s = need / min(h, w)
        x = resize(x, (max(need, math.ceil(h * s)), max(need, math.ceil(w * s))), keep_aspect=False)
        h, w = x.shape[-2:]
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    rows = []
    for i in range(grid):
        row = []
        for j in range(grid):
            room_y, room_x = ys[i + 1] - ys[i] - patch, xs[j + 1] - xs[j] - patch
            if generator is None:
                dy, dx = room_y // 2, room_x // 2
            else:
                dy = int(torch.randint(room_y + 1, (1,), generator=generator))
                dx = int(torch.randint(room_x + 1, (1,), generator=generator))
            top, left = ys[i] + dy, xs[j] + dx
            row.append(x[..., top:top + patch, left:left + patch])
        rows.append(torch.cat(row, -1))
    return torch.cat(rows, -2)

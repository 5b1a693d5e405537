"""Headerless planar YUV files: the size, format and rate come from the user (`RawSpec`)."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import MediaError

RAW_EXTS = frozenset({".yuv"})

# pix_fmt -> (chroma subsampling (x, y) or None for luma only, bits per sample)
RAW_FORMATS: dict[str, tuple[tuple[int, int] | None, int]] = {
    "yuv420p": ((2, 2), 8), "yuv422p": ((2, 1), 8), "yuv444p": ((1, 1), 8), "gray": (None, 8),
    "yuv420p10le": ((2, 2), 10), "yuv422p10le": ((2, 1), 10), "yuv444p10le": ((1, 1), 10), "gray10le": (None, 10),
}


@dataclass(frozen=True)
class RawSpec:
    """How to read a headerless YUV file: frame size in pixels, planar pixel format and frame rate."""

    width: int
    height: int
    pix_fmt: str = "yuv420p"
    fps: float = 25.0

    def __post_init__(self) -> None:
        if self.pix_fmt not in RAW_FORMATS:
            raise ValueError(f"unknown raw pix_fmt {self.pix_fmt!r}; use one of {', '.join(RAW_FORMATS)}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"raw frame size must be positive, got {self.width}x{self.height}")
        sub = RAW_FORMATS[self.pix_fmt][0]
        if sub and (self.width % sub[0] or self.height % sub[1]):
            raise ValueError(f"{self.pix_fmt} needs a width divisible by {sub[0]} and a height divisible by "
                             f"{sub[1]}, got {self.width}x{self.height}")
        if not self.fps > 0:
            raise ValueError(f"raw frame rate must be positive, got {self.fps}")

    @property
    def bit_depth(self) -> int:
        """Bits per sample (8 or 10)."""
        return RAW_FORMATS[self.pix_fmt][1]

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame: the luma plane plus both chroma planes."""
        sub, bits = RAW_FORMATS[self.pix_fmt]
        luma = self.width * self.height
        chroma = 0 if sub is None else 2 * (self.width // sub[0]) * (self.height // sub[1])
        return (luma + chroma) * (2 if bits > 8 else 1)


def coded_luma(y: np.ndarray, bits: int) -> np.ndarray:
    """A coded Y plane as float32 on the 0-255 scale: deeper samples divided by 2**(bits - 8), as libvmaf does."""
    return y.astype(np.float32) / np.float32(1 << (bits - 8)) if bits > 8 else y.astype(np.float32)


def parse_size(text: str) -> tuple[int, int]:
    """Parse a frame size such as "1920x1080" into (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match or 0 in (int(match[1]), int(match[2])):
        raise ValueError(f"invalid frame size {text!r}: write WIDTHxHEIGHT with positive integers, e.g. 1920x1080")
    return int(match[1]), int(match[2])


def raw_frame_count(path: str | Path, spec: RawSpec) -> int:
    """Number of frames in a raw file; MediaError when its size is not a whole number of frames."""
    size = os.path.getsize(path)
    if size == 0 or size % spec.frame_bytes:
        raise MediaError(path, f"file size {size} bytes is not a positive multiple of the frame size "
                               f"{spec.frame_bytes} bytes ({spec.width}x{spec.height} {spec.pix_fmt}); "
                               f"check the size and pixel format")
    return size // spec.frame_bytes


def yuv_to_rgb(y: np.ndarray, u: np.ndarray | None, v: np.ndarray | None, bits: int) -> np.ndarray:
    """BT.601 limited-range planar YUV (chroma upsampled by repetition) to RGB, uint8 for 8-bit, uint16 above."""
    scale = float(1 << (bits - 8))
    luma = (y.astype(np.float32) - 16 * scale) * (255 / 219) / scale
    if u is None or v is None:
        rgb = np.repeat(luma[..., None], 3, -1)
    else:
        ry, rx = y.shape[0] // u.shape[0], y.shape[1] // u.shape[1]
        cb = (np.repeat(np.repeat(u, ry, 0), rx, 1).astype(np.float32) - 128 * scale) * (255 / 224) / scale
        cr = (np.repeat(np.repeat(v, ry, 0), rx, 1).astype(np.float32) - 128 * scale) * (255 / 224) / scale
        rgb = np.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], -1)
    if bits > 8:
        return np.clip(rgb * 257 + 0.5, 0, 65535).astype(np.uint16)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def read_raw(path: str | Path, spec: RawSpec, indices: Sequence[int] | None = None,
             pixels: str = "rgb") -> Iterator[tuple[int, np.ndarray]]:
    """Yield (index, HxWx3 RGB) for the wanted frames of a raw YUV file, one frame in memory at a time;
    with pixels="luma" the Y plane as float32 on the 0-255 scale instead."""
    n = raw_frame_count(path, spec)
    sub, bits = RAW_FORMATS[spec.pix_fmt]
    dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)
    w, h = spec.width, spec.height
    with open(path, "rb") as f:
        for i in (range(n) if indices is None else [i for i in indices if i < n]):
            f.seek(i * spec.frame_bytes)
            buf = np.frombuffer(f.read(spec.frame_bytes), dtype)
            y = buf[:w * h].reshape(h, w)
            if pixels == "luma":
                yield i, coded_luma(y, bits)
                continue
            if sub is None:
                yield i, yuv_to_rgb(y, None, None, bits)
                continue
            cw, ch = w // sub[0], h // sub[1]
            u = buf[w * h:w * h + cw * ch].reshape(ch, cw)
            v = buf[w * h + cw * ch:].reshape(ch, cw)
            yield i, yuv_to_rgb(y, u, v, bits)

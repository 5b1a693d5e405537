"""Video degradations of the data engine: codec CRF and resolution ladders through PyAV, camera shake
and frame drops, deterministic given a seed (DESIGN section 5).

Frames are HxWx3 uint8 RGB arrays. ``encode`` writes a real bitstream (H.264, H.265, VP9, AV1) so
that the artifacts are the codecs' own; ``camera_shake`` and ``frame_drops`` are frame filters.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image
from scipy import ndimage

# encoder, CRF option and the five graded CRF values (severity 1 mild .. 5 severe); single-threaded for
# bit-exact output given the same input
CODECS: dict[str, tuple[str, dict[str, str], tuple[int, int, int, int, int]]] = {
    "h264": ("libx264", {"preset": "medium", "threads": "1"}, (23, 29, 35, 41, 47)),
    "h265": ("libx265", {"preset": "medium", "x265-params": "pools=1:frame-threads=1:log-level=error"}, (25, 31, 37, 43, 49)),
    "vp9": ("libvpx-vp9", {"b": "0", "threads": "1", "cpu-used": "4", "row-mt": "0"}, (32, 40, 48, 55, 62)),
    "av1": ("libsvtav1", {"preset": "10", "svtav1-params": "lp=1"}, (30, 38, 46, 54, 62)),
}
LADDER = (1.0, 0.75, 0.5, 0.375, 0.25)  # resolution rungs as a fraction of the source height


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


@contextlib.contextmanager
def _keep_scheduling() -> Iterator[None]:
    """Restore this thread's CPU scheduling after encoding: SVT-AV1, run as root, switches the calling
    thread to real-time SCHED_FIFO, which would starve every other process of the machine."""
    policy = os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None
    try:
        yield
    finally:
        if policy is not None and os.sched_getscheduler(0) != policy:
            os.sched_setscheduler(0, policy, os.sched_param(0))


def encode(frames: Iterable[np.ndarray], out: Path, codec: str = "h264", crf: int | None = None, level: int = 3,
           scale: float = 1.0, fps: float = 30.0, gop: int = 60) -> Path:
    """Encode frames at a CRF (or the graded ``level``) and a ladder ``scale``; returns ``out``.

    The quality of the result repeats, its bytes need not: with MB-tree rate control, libx264's SIMD code is not
    run-to-run deterministic on our machines (``asm=0`` or ``mbtree=0`` are, at the cost of speed or of x264's
    usual behaviour). tests/test_data_video_degrade.py checks that repeats agree in quality and size.
    """
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    name, options, levels = CODECS[codec]
    crf = levels[level - 1] if crf is None else crf
    out.parent.mkdir(parents=True, exist_ok=True)
    with _keep_scheduling(), av.open(str(out), "w") as container:
        stream = None
        for i, frame in enumerate(frames):
            if stream is None:
                h, w = frame.shape[:2]
                stream = container.add_stream(name, rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height, stream.pix_fmt = _even(w * scale), _even(h * scale), "yuv420p"
                stream.options = {**options, "crf": str(crf), "g": str(gop)}
            img = Image.fromarray(frame).resize((stream.width, stream.height), Image.BICUBIC) if scale != 1 else None
            vf = av.VideoFrame.from_ndarray(np.asarray(img) if img is not None else frame, format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        if stream is None:
            raise ValueError("no frames to encode")
        for packet in stream.encode():
            container.mux(packet)
    return out


def camera_shake(frames: Iterable[np.ndarray], amplitude: float, seed: int = 0) -> Iterator[np.ndarray]:
    """Hand-held shake: a smoothed random walk of sub-pixel translations up to ``amplitude`` pixels."""
    rng = np.random.default_rng(seed)
    pos = np.zeros(2)
    vel = np.zeros(2)
    for frame in frames:
        vel = 0.7 * vel + rng.normal(0, amplitude / 3, 2)
        pos = np.clip(0.85 * pos + vel, -amplitude, amplitude)
        yield np.clip(ndimage.shift(frame.astype(np.float32), (pos[0], pos[1], 0), order=1, mode="reflect"),
                      0, 255).astype(np.uint8)


def frame_drops(frames: Iterable[np.ndarray], rate: float, seed: int = 0) -> Iterator[np.ndarray]:
    """Dropped frames shown as repeats of the last delivered one (stutter), at a drop ``rate`` in [0, 1)."""
    if not 0 <= rate < 1:
        raise ValueError(f"drop rate must be in [0, 1), got {rate}")
    rng = np.random.default_rng(seed)
    last = None
    for frame in frames:
        if last is None or rng.random() >= rate:
            last = frame
        yield last

"""``dqa bench``: decode-only versus end-to-end speed of a model on one file, and peak memory.

The physical limit of scoring is decoding the frames the sampler needs (DESIGN section 7); the
ratio end-to-end time / decode-only time says how close the runner comes to it.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.backbone import ResNetBackbone
from common.media import (TemporalSampler, UniformK, center_crop, load_image, media_kind, probe_video, read_media, resize,
                          to_tensor)
from common.model import Model
from common.runner import Job, ScoreOptions, plan_frames, raw_spec_for, run_jobs, with_context

SAMPLE_IMAGE = Path(__file__).resolve().parent / "samples" / "ref" / "astronaut.png"


class BackboneFeatures(Model):
    """Bench-only: a plain ResNet-18 feature pass on a 224x224 centre crop per frame (not a quality score)."""

    name = "backbone"
    mode = "NR"
    channels_last = True
    autocast = True

    def __init__(self, device: str | torch.device = "cpu", size: int = 224) -> None:
        super().__init__(device)
        self.size = size
        self.net = ResNetBackbone().eval().to(self.device, memory_format=torch.channels_last)

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> torch.Tensor:
        return center_crop(resize(to_tensor(frame), self.size), self.size)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net.pooled(batch).mean(1)

    def to(self, device: str | torch.device) -> Model:
        super().to(device)
        self.net.to(self.device)
        return self


@dataclass
class BenchReport:
    """Timings of one model on one file on one device."""

    model: str
    device: str
    path: str
    frames: int
    duration_s: float
    decode_s: float
    e2e_s: float
    peak_rss_mb: float

    def table(self) -> str:
        """A short human-readable report with the ratios DESIGN section 7 asks for."""
        ratio = self.e2e_s / max(self.decode_s, 1e-9)
        rt = f"{self.duration_s / self.e2e_s:.1f}x real time" if self.duration_s > 0 else "image"
        return "\n".join([
            f"model {self.model} on {self.device}: {self.path}",
            f"  frames scored          {self.frames}",
            f"  decode-only            {self.decode_s:8.3f} s  {self.frames / max(self.decode_s, 1e-9):8.1f} frames/s",
            f"  end-to-end             {self.e2e_s:8.3f} s  {self.frames / max(self.e2e_s, 1e-9):8.1f} frames/s",
            f"  end-to-end / decode    {ratio:8.2f}",
            f"  speed                  {rt}",
            f"  peak memory (process)  {self.peak_rss_mb:8.0f} MB",
        ])


def _decode_only(path: Path, sampler: TemporalSampler, opts: ScoreOptions, model: Model) -> None:
    """Decode exactly the frames the runner would decode for this file (context frames too), as the model wants
    them."""
    indices, info = plan_frames(path, sampler, opts, model.context_frames)
    for _ in read_media(path, with_context(indices, model.context_frames), raw=raw_spec_for(path, opts),
                        backend=opts.backend, pixels=model.pixels, info=info):
        pass


def bench(name: str, path: Path, ref: str | None = None, device: str = "cpu", repeat: int = 1,
          sampler: TemporalSampler | None = None, weights: str | None = None, **options: Any) -> BenchReport:
    """Time decode-only and end-to-end scoring of ``path`` (FR models without ``ref`` use the file itself)."""
    from common.registry import load_model, resolve_device

    dev = resolve_device(device)
    model = BackboneFeatures(dev) if name == "backbone" else load_model(name, device=dev, weights=weights)
    opts = ScoreOptions(sampler=sampler, progress=False, **options)
    sampler = sampler or model.sampler
    ref_path = Path(ref) if ref else (path if model.mode == "FR" else None)
    job = Job(0, str(path), path, ref_path)
    warm = opts if model.consecutive_frames else replace(opts, sampler=UniformK(2))
    run_jobs(model, [job], warm)  # warm-up: kernels, allocator, file cache
    decode_s = e2e_s = float("inf")
    frames = 0
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        _decode_only(path, sampler, opts, model)
        if ref_path is not None:
            _decode_only(ref_path, sampler, opts, model)
        decode_s = min(decode_s, time.perf_counter() - t0)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = run_jobs(model, [job], opts)[0]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        e2e_s = min(e2e_s, time.perf_counter() - t0)
        if result.error:
            raise ValueError(f"scoring failed: {result.error}")
        frames = len(result.frames)
    duration = 0.0 if media_kind(path) == "image" else probe_video(path, raw=raw_spec_for(path, opts)).duration
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return BenchReport(model.name, dev.type, str(path), frames, duration, decode_s, e2e_s, peak)


def make_bench_clip(path: Path, seconds: float = 10.0, size: tuple[int, int] = (1920, 1080), fps: int = 30) -> Path:
    """Write an H.264 clip (GOP of one second) panning and zooming over a bundled photo, with sensor-like noise."""
    import av

    w, h = size
    src = torch.from_numpy(load_image(SAMPLE_IMAGE).copy()).permute(2, 0, 1)[None].float()
    big = nn.functional.interpolate(src, size=(int(h * 1.5), int(h * 1.5) * w // h), mode="bicubic", align_corners=False)
    big = big[0].clamp(0, 255).byte().permute(1, 2, 0).numpy()
    rng = np.random.default_rng(0)
    n = int(round(seconds * fps))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": str(fps), "preset": "veryfast", "crf": "23"}
        for i in range(n):
            t = i / max(1, n - 1)
            y0 = int((big.shape[0] - h) * (0.5 + 0.5 * np.sin(2 * np.pi * t)) * 0.9)
            x0 = int((big.shape[1] - w) * t)
            frame = big[y0:y0 + h, x0:x0 + w]
            frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path

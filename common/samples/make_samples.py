"""Regenerate the bundled samples from scikit-image's public-domain / CC0 photos.

Run ``python common/samples/make_samples.py``; see LICENSES.md beside it for the sources.
``ref/`` holds the pristine versions, ``dist/`` degraded ones paired by name or stem prefix.
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageFilter
from skimage import data

HERE = Path(__file__).resolve().parent


def _clip(path: Path, frames: list[np.ndarray], crf: int, fps: int = 30) -> None:
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": str(crf), "preset": "slow", "g": str(fps)}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def main() -> None:
    ref, dist = HERE / "ref", HERE / "dist"
    ref.mkdir(exist_ok=True)
    dist.mkdir(exist_ok=True)
    astronaut = Image.fromarray(data.astronaut()).resize((384, 384), Image.LANCZOS)
    coffee = Image.fromarray(data.coffee()).resize((450, 300), Image.LANCZOS)
    chelsea = Image.fromarray(data.chelsea())
    astronaut.save(ref / "astronaut.png", optimize=True)
    coffee.save(ref / "coffee.png", optimize=True)
    chelsea.save(ref / "chelsea.png", optimize=True)
    astronaut.save(dist / "astronaut.jpg", quality=12)
    coffee.filter(ImageFilter.GaussianBlur(2.0)).save(dist / "coffee_blur.png", optimize=True)
    noisy = np.asarray(chelsea, dtype=np.float32) + np.random.default_rng(0).normal(0, 12, (300, 451, 3))
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(dist / "chelsea_noise.webp", quality=90)
    big = np.asarray(Image.fromarray(data.astronaut()).resize((640, 640), Image.LANCZOS))
    frames = [big[140 + i: 140 + i + 240, 40 + 2 * i: 40 + 2 * i + 320] for i in range(75)]
    _clip(ref / "pan.mp4", frames, crf=16)
    _clip(dist / "pan_crf40.mp4", frames, crf=40)


if __name__ == "__main__":
    main()

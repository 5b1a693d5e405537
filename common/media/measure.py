"""Measure decode speed of both video backends so that `DECORD_MAX_DENSITY` can be re-measured.

Usage: python -m common.media.measure CLIP [--repeat N] [--make GOP]
Prints the time to read every k-th frame (densities 1/1 to 1/60) and 8 uniform frames with PyAV and with
decord, best of N interleaved runs; "wanted/s" counts delivered frames per second. --make first writes a
10-s 1080p30 H.264 test clip (x264 medium, CRF 21, keyframe every GOP frames: panned texture plus grain) to CLIP.
"""
from __future__ import annotations

import argparse
import time

import av
import numpy as np
from scipy.ndimage import gaussian_filter

from common.media.samplers import UniformK
from common.media.video import probe_video, read_frames

DENSITIES = (1, 4, 8, 15, 30, 60)


def make_clip(path: str, gop: int, seconds: int = 10) -> None:
    """Write a 1080p30 H.264 clip with camera-pan motion over a multi-scale texture and per-frame grain."""
    rng = np.random.default_rng(0)
    texture = np.full((1400, 2600, 3), 128, np.float32)
    for sigma, amp in ((1, 25), (2, 30), (6, 40), (20, 50), (60, 60)):
        noise = gaussian_filter(rng.normal(0, 1, texture.shape).astype(np.float32), (sigma, sigma, 0))
        texture += amp * noise * sigma ** 0.5 / 2
    opts = {"preset": "medium", "crf": "21", "g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=30, options=opts)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for i in range(30 * seconds):
            y, x = int(i * 0.8), int(i * 2.2)
            frame = texture[y:y + 1080, x:x + 1920] + rng.normal(0, 2.5, (1080, 1920, 1)).astype(np.float32)
            data = np.clip(frame, 0, 255).astype(np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(data, format="rgb24")))
        out.mux(stream.encode())


def main(argv: list[str] | None = None) -> None:
    """Time both backends on one clip at several densities and print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", help="video file, e.g. a 10-s 1080p H.264 clip")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per measurement; the best is kept")
    parser.add_argument("--make", type=int, metavar="GOP", help="first write a 1080p test clip with this GOP")
    args = parser.parse_args(argv)
    if args.make:
        make_clip(args.clip, args.make)
    info = probe_video(args.clip)
    n = info.n_frames
    print(f"{args.clip}: {info.width}x{info.height} {info.codec} {info.pix_fmt}, {n} frames at {info.fps:g} fps")
    print(f"{'request':>10} {'frames':>6} | {'pyav':>7} {'wanted/s':>8} | {'decord':>7} {'wanted/s':>8} | ratio")
    rows = [(f"1/{k}", list(range(0, n, k)) if k > 1 else None) for k in DENSITIES]
    rows.append(("uniform:8", UniformK(8).indices(n, info.fps)))
    for label, indices in rows:
        best, count = {"pyav": float("inf"), "decord": float("inf")}, 0
        for _ in range(args.repeat):
            for backend in best:
                start = time.perf_counter()
                count = sum(1 for _ in read_frames(args.clip, indices, backend=backend, info=info))
                best[backend] = min(best[backend], time.perf_counter() - start)
        cells = " | ".join(f"{best[b]:6.3f}s {count / best[b]:8.1f}" for b in best)
        print(f"{label:>10} {count:>6} | {cells} | {best['decord'] / best['pyav']:.2f}")


if __name__ == "__main__":
    main()

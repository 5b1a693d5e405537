"""What every tab shows, computed without Gradio: verdict words, heat maps, frame tables and thumbnails,
the JSON download, and the checks an upload passes before anything decodes it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from common.cli import SAMPLES
from common.media import IMAGE_EXTS, VIDEO_EXTS, read_frames, to_uint8
from common.output import open_writer
from common.registry import ModelSpec
from common.result import Result

UPLOAD_EXTS = tuple(sorted(IMAGE_EXTS | VIDEO_EXTS))  # raw .yuv needs its frame size, which a page cannot ask for
BANDS = ((80.0, "excellent"), (60.0, "good"), (40.0, "fair"), (20.0, "poor"), (-np.inf, "bad"))
THUMB_WIDTH = 320
MAP_ALPHA = 0.5


class UploadError(ValueError):
    """An upload the demo refuses before decoding it (too large, unknown type)."""


def band(score: float | None, spec: ModelSpec) -> str:
    """The five ACR words (ITU-T P.910) for a 0-100, higher-is-better score; otherwise how to read the number."""
    if score is None or not np.isfinite(score):
        return ""
    lo, hi = spec.score_range
    if (lo, hi) == (0.0, 100.0) and spec.higher_better:
        return next(word for floor, word in BANDS if score >= floor)
    return f"{'higher' if spec.higher_better else 'lower'} is better (range {lo:g} to {hi:g})"


def samples() -> dict[str, Path]:
    """The bundled sample files by display name ("dist/pan_crf40.mp4"); the only server files a page can pick."""
    return {f"{p.parent.name}/{p.name}": p for p in sorted(SAMPLES.glob("*/*"))
            if p.suffix.lower() in UPLOAD_EXTS}


def paired_sample(name: str) -> str | None:
    """The bundled reference of a bundled distorted sample: same stem, or the longest stem that prefixes it."""
    stem = Path(name).stem
    refs = [k for k in samples() if k.startswith("ref/") and stem.startswith(Path(k).stem)]
    return max(refs, key=lambda k: len(Path(k).stem), default=None)


def check_upload(path: str | Path, max_bytes: int) -> Path:
    """An uploaded file that may be decoded: a known image or video extension, at most ``max_bytes``."""
    p = Path(path)
    if p.suffix.lower() not in UPLOAD_EXTS:
        raise UploadError(f"{p.name}: unsupported file type {p.suffix or '(none)'}; upload one of "
                          f"{' '.join(UPLOAD_EXTS)}")
    size = p.stat().st_size
    if size > max_bytes:
        raise UploadError(f"{p.name}: {size / 2**20:.1f} MB is over this demo's limit of {max_bytes / 2**20:.0f} MB")
    return p


def user_message(text: str, paths: dict[str, str]) -> str:
    """An error for the page: server paths replaced by the names the user knows (``paths``: path -> name)."""
    for path, name in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(path, name)
    text = re.sub(r"\[Errno -?\d+\] ", "", text)  # FFmpeg's error numbers mean nothing to a user
    return re.sub(r"(/[^\s:'\"]+)+/([^/\s:'\"]+)", r"\2", text)  # any other absolute path: its last part only


def colormap(goodness: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8: red (worst) through yellow to green (best)."""
    g = np.clip(goodness, 0, 1)[..., None]
    red, yellow, green = np.array([215, 48, 39]), np.array([254, 224, 80]), np.array([26, 152, 80])
    rgb = np.where(g < 0.5, red + (yellow - red) * (g * 2), yellow + (green - yellow) * (g * 2 - 1))
    return rgb.round().astype(np.uint8)


def heat_overlay(image: np.ndarray, goodness: np.ndarray, alpha: float = MAP_ALPHA) -> np.ndarray:
    """The image (scaled to the map's size) blended with the colour-mapped goodness map."""
    img = to_uint8(image)
    h, w = goodness.shape
    if img.shape[:2] != (h, w):
        img = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BILINEAR))
    return (img * (1 - alpha) + colormap(goodness) * alpha).round().astype(np.uint8)


def frame_table(result: Result) -> dict[str, list[float]]:
    """Per-frame scores as the plot's columns: time in seconds and score."""
    return {"time (s)": [f.time for f in result.frames], "score": [f.score for f in result.frames]}


def extreme_frames(path: Path, result: Result, higher_better: bool) -> list[tuple[np.ndarray, str]]:
    """Thumbnails of the worst and the best scored frame of a video, with captions."""
    scored = [f for f in result.frames if f.score is not None and np.isfinite(f.score)]
    if len(scored) < 2:
        return []
    ranked = sorted(scored, key=lambda f: f.score if higher_better else -f.score)
    picks = {"worst": ranked[0], "best": ranked[-1]}
    images = {fr.index: to_uint8(fr.data) for fr in read_frames(path, sorted({f.frame for f in picks.values()}))}
    out = []
    for what, f in picks.items():
        if f.frame not in images:
            continue
        im = Image.fromarray(images[f.frame])
        im.thumbnail((THUMB_WIDTH, THUMB_WIDTH * 4))
        out.append((np.asarray(im), f"{what}: frame {f.frame} at {f.time:.2f} s, score {f.score:.1f}"))
    return out


def write_json(result: Result, metric: str, folder: Path) -> Path:
    """The result as the VMAF-shaped JSON document ``dqa score --format json`` writes, in ``folder``."""
    out = folder / f"{Path(result.path).stem or 'result'}.{result.model}.json"
    writer = open_writer(out, "json", model=result.model, metric=metric, weights_sha256=result.weights_sha256)
    try:
        writer.write(result)
    finally:
        writer.close()
    return out

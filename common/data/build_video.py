"""Video items of the dataset builders: codec and resolution ladders, camera shake, frame drops and
per-frame image degradations of a short pristine clip, labelled by the fused teacher and VMAF.

The pristine reference is the source clip cut to ``seconds`` and scaled to at most ``height``
lines, stored losslessly (H.264 at CRF 0, so both sides share the same 4:2:0 sampling). Codec
kinds encode the reference at the kind's graded CRF; other kinds filter the frames and store them
with a near-transparent H.264 carrier (CRF 16), as an upload pipeline would. Ladder rungs are
stored at their reduced size; their labels compare the rung upscaled (bicubic) to the reference,
as VMAF's practice is to score at display resolution.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from common.data.build import Recipe, _row, apply_chain, item_seed, parse_chain, slug
from common.data.catalogue import Entry
from common.data.manifest import PRISTINE
from common.data.teacher import fused_label
from common.data.video_degrade import CODECS, camera_shake, encode, frame_drops
from common.media import UniformK, read_frames, to_uint8

CARRIER_CRF = 16
LADDER_SCALES = (0.75, 0.5, 0.375, 0.25, 0.1875)  # severity 1..5 rungs, each at the ladder CRF
LADDER_CRF = 23
SHAKE_PX = (1.5, 3.0, 6.0, 10.0, 16.0)
DROP_RATES = (0.1, 0.2, 0.35, 0.5, 0.7)
VIDEO_KINDS = (*CODECS, "ladder", "shake", "drops")
CODEC_KINDS = (*CODECS, "ladder")  # what VMAF labels: codec CRF ladders and the resolution ladder
LABEL_FRAMES = UniformK(8)  # the fused label is the mean over these frames
VMAF_MODEL = "vmaf_v0.6.1"


def fit_height(img: np.ndarray, height: int) -> np.ndarray:
    """Scale (area) to at most ``height`` lines, keeping the aspect ratio, with even sides."""
    h, w = img.shape[:2]
    scale = min(1.0, height / h)
    size = (max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2))
    return img if size == (w, h) else np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BOX))


def clip_reader(seconds: float, height: int) -> Callable[[Path], tuple[list[np.ndarray], float]]:
    """A ``make_clip`` that takes the first ``seconds`` of a clip at most ``height`` lines high."""
    def read_clip(path: Path) -> tuple[list[np.ndarray], float]:
        from common.media import probe_video

        info = probe_video(path)
        fps = info.fps or 25.0
        n = max(2, int(round(seconds * fps)))
        frames = [fit_height(to_uint8(f.data), height) for _, f in zip(range(n), read_frames(path, info=info))]
        return frames, fps

    read_clip.__doc__ = f"first {seconds:g} s, at most {height} lines (area scaling)"
    return read_clip


def decode(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """All frames of a file as TxHxWx3 uint8, upscaled (bicubic) to ``size`` = (w, h) when given."""
    out = []
    for frame in read_frames(path):
        img = frame.data
        if size and img.shape[1::-1] != size:
            img = np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC))
        out.append(img)
    return np.stack(out)


def _filtered(kind: str, frames: Sequence[np.ndarray], level: int, seed: int) -> Iterable[np.ndarray]:
    if kind == "shake":
        return camera_shake(frames, SHAKE_PX[level - 1], seed=seed)
    if kind == "drops":
        return frame_drops(frames, DROP_RATES[level - 1], seed=seed)
    chain = parse_chain(kind)
    return (apply_chain(f, chain, level, seed + 7919 * i) for i, f in enumerate(frames))  # fresh noise per frame


def make_item(kind: str, ref_frames: Sequence[np.ndarray], level: int, seed: int, out: Path, fps: float) -> Path:
    """Encode one distorted version of the reference frames to ``out``."""
    if kind in CODECS:
        return encode(ref_frames, out, kind, level=level, fps=fps)
    if kind == "ladder":
        return encode(ref_frames, out, "h264", crf=LADDER_CRF, scale=LADDER_SCALES[level - 1], fps=fps)
    return encode(_filtered(kind, ref_frames, level, seed), out, "h264", crf=CARRIER_CRF, fps=fps)


def vmaf_label(dist: Path, ref: Path, size: tuple[int, int]) -> float:
    """VMAF v0.6.1 (Netflix's libvmaf, in imageio-ffmpeg's FFmpeg) over every frame, the distorted clip
    scaled (bicubic) to the reference's ``size`` = (w, h); the mean of the frame scores."""
    from common.metrics.libvmaf import libvmaf_frames

    return float(libvmaf_frames(dist, ref, VMAF_MODEL, size=size)["vmaf"].mean())


def video_labels(dist: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Fused teacher: the mean over the LABEL_FRAMES frames."""
    idx = LABEL_FRAMES.indices(min(len(dist), len(ref)), 1.0)
    return {"fused": float(np.mean([fused_label(dist[i], ref[i]).fused for i in idx]))}


def build_video_content(recipe: Recipe, entry: Entry, root: Path, out: Path, split: str,
                        distortions: Sequence[str], levels: Sequence[int]) -> list[dict]:
    """Pristine clip plus every distortion x level of one video content, with labels."""
    folder = out / slug(entry.path)
    folder.mkdir(parents=True, exist_ok=True)
    frames, fps = recipe.make_clip(root / entry.path)
    ref_rel = f"{folder.name}/pristine.mp4"
    encode(frames, out / ref_rel, "h264", crf=0, fps=fps)
    ref = decode(out / ref_rel)
    size = ref.shape[2], ref.shape[1]
    ref_path = out / ref_rel
    pristine = {"fused": 100.0, **({"vmaf": vmaf_label(ref_path, ref_path, size)} if recipe.vmaf else {})}
    rows = [_row(ref_rel, "", entry.path, PRISTINE, 0, {**pristine, **recipe.labels(PRISTINE)}, split)]
    for kind in distortions:
        for lv in levels:
            rel = f"{folder.name}/{kind.replace('@', '')}_{lv}.mp4"
            make_item(kind, ref, lv, item_seed(entry.path, kind, lv), out / rel, fps)
            labels = video_labels(decode(out / rel, size), ref)
            if recipe.vmaf and kind in CODEC_KINDS:
                labels["vmaf"] = vmaf_label(out / rel, ref_path, size)
            rows.append(_row(rel, ref_rel, entry.path, kind, lv, {**labels, **recipe.labels(kind)}, split))
    return rows

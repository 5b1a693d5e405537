"""Data recipes of the video suite (DESIGN section 5): which clips, which degradations, which teacher.

- ``ugc``: real camera clips with what user uploads suffer (motion and focus blur, sensor noise, low
  light, exposure, contrast and saturation errors, compression, down-scaling); labelled by the fused
  teacher (``common.data.teacher``). Camera shake and frame drops are left out of the labelled set:
  a frame-by-frame full-reference teacher reads a 1-pixel shift as heavy damage, so these need a
  temporal teacher before they can be labelled honestly.
- ``pgc``: the same real clips through broadcast/streaming codecs (H.264, H.265, VP9, AV1 CRF
  ladders and an H.264 resolution ladder); labelled by VMAF, with the fused label beside it.
- ``game``: rendered content - the CGI clips and slow camera pans over digital art - through the
  same codec ladders; labelled by VMAF.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from common.data.build import Recipe, load_source, register_recipe
from common.data.build_video import CODEC_KINDS, clip_reader, fit_height
from common.data.catalogue import Entry
from common.media import VIDEO_EXTS
from common.metrics.fr import MS_SSIM_MIN_SIZE

PAN_SIZE = (640, 360)
PAN_FPS = 30.0


def is_real_clip(e: Entry) -> bool:
    """Camera-captured clips, not CGI or screen recordings, tall enough for the teacher's MS-SSIM."""
    return e.tag == "video" and e.note in ("", "night", "underwater") and e.height >= MS_SSIM_MIN_SIZE


def is_rendered(e: Entry) -> bool:
    """CGI clips and digital art (panned into clips)."""
    return (e.tag == "video" and e.note == "cgi") or e.tag == "art"


def rendered_clip(seconds: float, height: int):
    """``make_clip`` of the game recipe: CGI clips as they are, art as a slow diagonal camera pan."""
    read = clip_reader(seconds, height)

    def make(path: Path) -> tuple[list[np.ndarray], float]:
        if path.suffix.lower() in VIDEO_EXTS:
            return read(path)
        img = fit_height(load_source(path), 540)
        w, h = PAN_SIZE
        if img.shape[0] < h or img.shape[1] < w:
            img = np.asarray(Image.fromarray(img).resize((max(w, img.shape[1]), max(h, img.shape[0])), Image.BICUBIC))
        n = int(round(seconds * PAN_FPS))
        xs = np.linspace(0, img.shape[1] - w, n).round().astype(int)
        ys = np.linspace(0, (img.shape[0] - h) // 3, n).round().astype(int)
        return [fit_height(np.ascontiguousarray(img[y:y + h, x:x + w]), height) for x, y in zip(xs, ys)], PAN_FPS

    make.__doc__ = f"CGI clips: {read.__doc__}; art: a {seconds:g} s pan of a {PAN_SIZE[0]}x{PAN_SIZE[1]} window"
    return make


register_recipe(Recipe(
    suite="ugc", media="video", select=is_real_clip, make_clip=clip_reader(2.0, 480),
    distortions=("h264", "ladder", "motion_blur", "defocus_blur", "sensor_noise", "low_light", "brightness",
                 "contrast", "saturation"),
    small_distortions=("h264", "ladder", "sensor_noise"),
    teacher="fused full-reference label (MS-SSIM, GMSD, VIF, CIEDE2000; common.data.teacher), mean of 8 frames"))

register_recipe(Recipe(
    suite="pgc", media="video", select=is_real_clip, make_clip=clip_reader(1.0, 360), label="vmaf",
    distortions=CODEC_KINDS, small_distortions=("h264", "ladder"), vmaf=True,
    teacher="VMAF v0.6.1 (vmaf-torch) over every frame; fused label beside it"))

register_recipe(Recipe(
    suite="game", media="video", select=is_rendered, make_clip=rendered_clip(1.0, 360), label="vmaf",
    distortions=CODEC_KINDS, small_distortions=("h264", "ladder"), vmaf=True,
    teacher="VMAF v0.6.1 (vmaf-torch) over every frame; fused label beside it"))

"""Data recipes of the video suite (DESIGN section 5): which clips, which degradations, which teacher.

- ``ugc``: real camera clips, and camera-motion clips panned over natural photos, with what user uploads
  suffer (motion and focus blur, sensor noise, low light, exposure, contrast and saturation errors,
  compression, down-scaling, and combinations of a fixed capture fault with a graded one); labelled by
  the fused teacher (``common.data.teacher``). Camera shake and frame drops are left out of the
  labelled set: a frame-by-frame full-reference teacher reads a 1-pixel shift as heavy damage, so these
  need a temporal teacher before they can be labelled honestly.
- ``pgc``: the same real clips and photo pans through broadcast/streaming codecs (H.264, H.265, VP9,
  AV1 CRF ladders and an H.264 resolution ladder); labelled by VMAF, with the fused label beside it.
- ``game``: rendered content - the CGI clips and slow camera pans over digital art - through the
  same codec ladders; labelled by VMAF.

Photo and art pans move a 16:9 window of the clip's height diagonally over the image scaled to 1.5x that
height, so the motion is that of a slow camera pan and the detail is the photo's own.
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

PAN_FPS = 30.0


def is_real_clip(e: Entry) -> bool:
    """Camera-captured clips, not CGI or screen recordings, tall enough for the teacher's MS-SSIM."""
    return e.tag == "video" and e.note in ("", "night", "underwater") and e.height >= MS_SSIM_MIN_SIZE


def is_rendered(e: Entry) -> bool:
    """CGI clips and digital art (panned into clips)."""
    return (e.tag == "video" and e.note == "cgi") or e.tag == "art"


def is_camera_content(e: Entry) -> bool:
    """Real clips and natural photos (panned into clips): what cameras capture."""
    return is_real_clip(e) or e.tag == "photo"


def pan_window(image: tuple[int, int], target: tuple[int, int], native: bool) -> tuple[int, int]:
    """The (w, h) window a pan moves over an ``image`` of (w, h), for a ``target`` (w, h) clip: the target where the
    image holds it. ``native``: in a smaller image, at most nine tenths of each side of it, so that the source keeps
    its own scale and the window still moves; otherwise the target, the image being stretched up to it first."""
    if not native or all(s >= t for s, t in zip(image, target)):
        return target
    w, h = (min(t, max(2, int(0.9 * s) // 2 * 2)) for s, t in zip(image, target))
    return w, h


def clip_or_pan(seconds: float, height: int, native: bool = False):
    """A ``make_clip``: clips as they are (first ``seconds``, at most ``height`` lines), images as a slow pan of a 16:9
    window ``height`` lines high over the image scaled to 1.5x that height. ``native``: never scale an image up; one
    smaller than that window is panned by a window that fits inside it (:func:`pan_window`), so that a pristine clip
    is as sharp as its source. Without it a smaller image is stretched (bicubic, per axis) to the window first."""
    read = clip_reader(seconds, height)
    target = (height * 16 // 9 // 2 * 2, height)

    def make(path: Path) -> tuple[list[np.ndarray], float]:
        if path.suffix.lower() in VIDEO_EXTS:
            return read(path)
        img = fit_height(load_source(path), height * 3 // 2)
        w, h = pan_window((img.shape[1], img.shape[0]), target, native)
        if img.shape[0] < h or img.shape[1] < w:
            img = np.asarray(Image.fromarray(img).resize((max(w, img.shape[1]), max(h, img.shape[0])), Image.BICUBIC))
        n = int(round(seconds * PAN_FPS))
        xs = np.linspace(0, img.shape[1] - w, n).round().astype(int)
        ys = np.linspace(0, (img.shape[0] - h) // 3, n).round().astype(int)
        return [fit_height(np.ascontiguousarray(img[y:y + h, x:x + w]), height) for x, y in zip(xs, ys)], PAN_FPS

    how = "at most 9/10 of a smaller image, never scaled up" if native else "smaller images stretched to it"
    make.__doc__ = f"clips: {read.__doc__}; images: a {seconds:g} s pan of a {target[0]}x{target[1]} window ({how})"
    return make


register_recipe(Recipe(
    suite="ugc", media="video", select=is_camera_content, make_clip=clip_or_pan(1.0, 480, native=True),
    distortions=("h264", "ladder", "motion_blur", "defocus_blur", "sensor_noise", "low_light", "brightness",
                 "contrast", "saturation", "defocus_blur@2+sensor_noise", "low_light@2+motion_blur",
                 "brightness@2+defocus_blur"),
    small_distortions=("h264", "ladder", "sensor_noise"),
    teacher="fused full-reference label (MS-SSIM, GMSD, VIF, CIEDE2000; common.data.teacher), mean of 8 frames"))

register_recipe(Recipe(
    suite="pgc", media="video", select=is_camera_content, make_clip=clip_or_pan(1.0, 360), label="vmaf",
    distortions=CODEC_KINDS, small_distortions=("h264", "ladder"), vmaf=True,
    teacher="VMAF v0.6.1 (libvmaf) over every frame; fused label beside it"))

register_recipe(Recipe(
    suite="game", media="video", select=is_rendered, make_clip=clip_or_pan(1.0, 360), label="vmaf",
    distortions=CODEC_KINDS, small_distortions=("h264", "ladder"), vmaf=True,
    teacher="VMAF v0.6.1 (libvmaf) over every frame; fused label beside it"))

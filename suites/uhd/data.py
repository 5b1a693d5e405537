"""Data recipe of the 4K suite: native-resolution crops (true) against down-up resampled copies (pseudo).

4K models judge native-resolution patches, so what separates true from pseudo 4K is per-pixel
detail, not frame size: a pristine item is a 1920x1080 crop of a high-resolution photo or artwork
taken at its native pixel scale (``true_4k`` = 1); pseudo items are that crop downscaled by 1.5-6x
with a random kernel and upscaled back (``true_4k`` = 0); compressed and noisy copies keep their
native detail (``true_4k`` = 1). Quality labels come from the fused teacher.
"""
from __future__ import annotations

import numpy as np

from common.data.build import Recipe, register_recipe
from common.data.catalogue import Entry

CROP = (1920, 1080)
PSEUDO_KINDS = ("resample",)


def is_high_res(e: Entry) -> bool:
    """Photos and art of at least 2560x1440 pixels."""
    return e.tag in ("photo", "art") and e.width * e.height >= 2560 * 1440


def native_crop(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - CROP[1]) // 2, (w - CROP[0]) // 2
    return np.ascontiguousarray(img[y:y + CROP[1], x:x + CROP[0]])


native_crop.__doc__ = f"centre {CROP[0]}x{CROP[1]} crop at native resolution"


def true_4k(kind: str) -> dict[str, float]:
    """1 for native detail, 0 for upscaled (pseudo) copies."""
    return {"true_4k": 0.0 if kind in PSEUDO_KINDS else 1.0}


register_recipe(Recipe(
    suite="uhd", media="image", select=is_high_res, prepare=native_crop, labels=true_4k,
    distortions=("resample", "jpeg", "webp", "gaussian_noise"), small_distortions=("resample", "jpeg"),
    teacher="true_4k from the construction; fused full-reference quality label (common.data.teacher)"))

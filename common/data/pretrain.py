"""Data recipe of the shared backbone's quality-aware pretraining (DESIGN section 5).

Every domain's content - natural photos, digital art and CGI, screen pages, and the middle frames of
the real, CGI and screen-recorded clips - as a 512x512 centre crop after scaling the short side down
to at most 768 pixels (so photos keep scene context and screen text stays legible), through every
image degradation kind of ``common.data.degrade`` (low light and underwater formation included) and
four common combinations, labelled by the fused teacher on one 0-100 scale.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from common.data.build import Recipe, register_recipe
from common.data.catalogue import Entry
from common.data.degrade import KINDS

SHORT_SIDE = 768
CROP = 512
CHAINS = ("resample@2+jpeg", "sensor_noise@2+jpeg", "low_light@1+jpeg", "underwater@2+gaussian_blur")


def usable(e: Entry) -> bool:
    """Photos, art, screen pages and clips whose short side leaves room for training crops."""
    return e.tag in ("photo", "art", "screen", "video") and min(e.width, e.height) >= 256


def centre_crop(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    scale = SHORT_SIDE / min(h, w)
    if scale < 1:
        img = np.asarray(Image.fromarray(img).resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS))
        h, w = img.shape[:2]
    ch, cw = min(h, CROP), min(w, CROP)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(img[y:y + ch, x:x + cw])


centre_crop.__doc__ = f"short side at most {SHORT_SIDE} px (Lanczos), then the centre {CROP}x{CROP}"

register_recipe(Recipe(
    suite="backbone", media="image", select=usable, prepare=centre_crop, distortions=(*KINDS, *CHAINS),
    small_distortions=("gaussian_blur", "jpeg", "sensor_noise", "low_light@1+jpeg"),
    teacher="fused full-reference label (common.data.teacher) against the clean crop"))

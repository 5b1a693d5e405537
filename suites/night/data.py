"""Data recipe of the night suite.

A clean night rendering of each natural photo is the pristine reference: a per-content tone curve that
darkens shadows and mid-tones far more than highlights (``lin ** power * exposure``, so lights stay
bright) plus a warm or cool street-light cast, all without noise. On top of it come the defects night
shots suffer - sensor noise, motion and defocus blur, exposure errors, flat contrast, compression and
their combinations - labelled by the fused teacher against the clean night rendering. (Grading against
the well-lit photo instead saturates: any darkening already scores near 0, so severities could not be
told apart.)
"""
from __future__ import annotations

import zlib

import numpy as np

from common.data.build import Recipe, fit_long_side, register_recipe

_FIT = fit_long_side(1024)


def night_rendering(img: np.ndarray) -> np.ndarray:
    """A clean night version of a daylight photo, deterministic per content (seeded by its pixels)."""
    rng = np.random.default_rng(zlib.crc32(np.ascontiguousarray(img[::8, ::8]).tobytes()))
    exposure, power = rng.uniform(0.4, 0.8), rng.uniform(1.4, 2.0)
    cast = np.array([1.0, 0.92, 0.72]) if rng.random() < 0.5 else np.array([0.8, 0.92, 1.0])
    lin = (img.astype(np.float64) / 255) ** 2.2
    out = np.clip(lin ** power * exposure * cast, 0, 1) ** (1 / 2.2)
    return np.rint(out * 255).astype(np.uint8)


def prepare(img: np.ndarray) -> np.ndarray:
    """Long side at most 1024 px, then the clean night rendering."""
    return night_rendering(_FIT(img))


register_recipe(Recipe(
    suite="night", media="image", select=lambda e: e.tag == "photo", prepare=prepare,
    distortions=("sensor_noise", "motion_blur", "defocus_blur", "brightness", "contrast", "jpeg",
                 "sensor_noise@1+jpeg", "sensor_noise@1+motion_blur"),
    small_distortions=("sensor_noise", "sensor_noise@1+motion_blur"),
    teacher="fused full-reference label against a clean night rendering of the photo (suites.night.data)"))

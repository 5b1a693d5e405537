"""Data recipe of the night suite: low-light synthesis (darkening with gamma plus sensor noise) of
natural photos, alone and with the blur, noise and compression that night shots also suffer, labelled
by the fused teacher against the well-lit original."""
from __future__ import annotations

from common.data.build import Recipe, fit_long_side, register_recipe

register_recipe(Recipe(
    suite="night", media="image", select=lambda e: e.tag == "photo", prepare=fit_long_side(1024),
    distortions=("low_light", "low_light@2+motion_blur", "low_light@2+defocus_blur", "low_light@2+jpeg",
                 "low_light@2+gaussian_noise", "low_light@1+contrast"),
    small_distortions=("low_light", "low_light@2+motion_blur"),
    teacher="fused full-reference label against the well-lit photo (common.data.teacher)"))

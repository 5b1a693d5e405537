"""Data recipe of the screen-content suite: rendered documentation, terminal, table, chart and slide
pages at 1920x1080 with the compression, scaling, blur, palette and noise damage of screen sharing
and screenshots, labelled by the fused teacher."""
from __future__ import annotations

from common.data.build import Recipe, fit_long_side, register_recipe

register_recipe(Recipe(
    suite="screen", media="image", select=lambda e: e.tag == "screen", prepare=fit_long_side(1920),
    distortions=("jpeg", "webp", "jpeg2000", "gaussian_blur", "resample", "quantize", "gaussian_noise", "contrast"),
    teacher="fused full-reference label (common.data.teacher)"))

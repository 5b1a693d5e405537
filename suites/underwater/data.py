"""Data recipe of the underwater suite: underwater image formation (Jerlov water types: attenuation
and backscatter) over natural photos, alone and with blur, noise, compression and haze-like contrast
loss, labelled by the fused teacher against the clean photo."""
from __future__ import annotations

from common.data.build import Recipe, fit_long_side, register_recipe

register_recipe(Recipe(
    suite="underwater", media="image", select=lambda e: e.tag == "photo", prepare=fit_long_side(1024),
    distortions=("underwater", "underwater@2+gaussian_blur", "underwater@2+gaussian_noise", "underwater@2+jpeg",
                 "underwater@2+contrast"),
    small_distortions=("underwater", "underwater@2+gaussian_blur"),
    teacher="fused full-reference label against the clean photo (common.data.teacher)"))

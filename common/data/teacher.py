"""The fused full-reference teacher: one 0-100 quality label for any degradation of a pristine image.

Each classic metric is blind to something: SSIM-family and GMSD work on luma and barely see a
saturation loss or a colour cast; GMSD ignores a global contrast change; VIF rises above 1 for
contrast stretching; CIEDE2000 sees colour but not structure. So the teacher fuses four
*distortion* terms, each scaled to about 1 at a clearly visible, mid-severity distortion:

- ``1 - MS-SSIM`` (Wang et al. 2003) for structure at several viewing distances,
- ``GMSD`` (Xue et al. 2014) for edge damage (blur, blocking, ringing),
- ``1 - min(VIF, 1)`` (Sheikh & Bovik 2006) for information loss (noise, blur, compression),
- mean CIEDE2000 colour difference (Sharma et al. 2005) for colour, hue and exposure shifts,

and pools them with a Minkowski sum of exponent 3, the probability-summation rule for independent
detectors (Quick 1974; Watson 1979): a distortion that only one term detects still lowers the label
fully, while one that every term detects is not counted four times. The pooled distortion ``D``
maps to quality ``100 * exp(-D / TEMPERATURE)``: 100 for a pristine copy, falling smoothly and
never below 0. The scales and the temperature are fixed constants measured once with
``python -m common.data.teacher`` (see ``calibrate``), so labels never depend on the set being built.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import torch
from skimage.color import deltaE_ciede2000, rgb2lab

from common.errors import DqaError
from common.media.samplers import rgb_array_to_luma
from common.metrics.fr import MS_SSIM_MIN_SIZE, gmsd, ms_ssim, vif

# Median of each term over level-3 distortions (all 15 kinds) of the calibration images, rounded;
# measured with `python -m common.data.teacher`.
SCALES: dict[str, float] = {"ms_ssim": 0.045, "gmsd": 0.057, "vif": 0.5, "ciede2000": 3.3}
EXPONENT = 3.0
TEMPERATURE = 1.9
COLOUR_SIDE = 512  # CIEDE2000 on an area-downscaled copy: colour differences are low-frequency


@dataclass(frozen=True)
class Label:
    """The raw metric values of one pair, and the fused label they give."""

    ms_ssim: float
    gmsd: float
    vif: float
    ciede2000: float

    def terms(self) -> dict[str, float]:
        """The four distortion terms before scaling (0 for a pristine copy)."""
        return {"ms_ssim": 1 - self.ms_ssim, "gmsd": self.gmsd, "vif": 1 - min(self.vif, 1.0),
                "ciede2000": self.ciede2000}

    @property
    def fused(self) -> float:
        """Quality 0-100 (see the module docstring)."""
        return fuse(self.terms())


def _check(dist: np.ndarray, ref: np.ndarray) -> None:
    for name, a in (("dist", dist), ("ref", ref)):
        if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise TypeError(f"fused_label: {name} must be an HxWx3 uint8 RGB array")
    if dist.shape != ref.shape:
        raise ValueError(f"fused_label: dist and ref must have the same shape, got {dist.shape} and {ref.shape}")
    if min(dist.shape[:2]) < MS_SSIM_MIN_SIZE:
        raise ValueError(f"fused_label: images must be at least {MS_SSIM_MIN_SIZE} pixels on each side")


def _area_downscale(img: np.ndarray, side: int) -> np.ndarray:
    f = int(np.ceil(max(img.shape[:2]) / side))
    if f <= 1:
        return img.astype(np.float64) / 255
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    return img[:h, :w].reshape(h // f, f, w // f, f, 3).mean(axis=(1, 3)) / 255


def fuse(terms: dict[str, float]) -> float:
    """Quality 0-100 from the four distortion terms (see the module docstring)."""
    d = sum((max(terms[k], 0.0) / SCALES[k]) ** EXPONENT for k in SCALES) ** (1 / EXPONENT)
    return float(100 * np.exp(-d / TEMPERATURE))


def fused_label(dist: np.ndarray, ref: np.ndarray) -> Label:
    """The fused full-reference label of ``dist`` against its pristine ``ref`` (HxWx3 uint8 RGB)."""
    _check(dist, ref)
    x = torch.from_numpy(rgb_array_to_luma(dist)).float()[None, None]
    y = torch.from_numpy(rgb_array_to_luma(ref)).float()[None, None]
    with torch.inference_mode():
        values = {"ms_ssim": ms_ssim(x, y).item(), "gmsd": gmsd(x, y).item(), "vif": vif(x, y).item()}
    values["ciede2000"] = float(deltaE_ciede2000(rgb2lab(_area_downscale(ref, COLOUR_SIDE)),
                                                 rgb2lab(_area_downscale(dist, COLOUR_SIDE))).mean())
    return Label(**values)


def calibrate(images: list[np.ndarray], seed: int = 0) -> dict[str, dict[int, float]]:
    """Median of every distortion term at each severity over all degradation kinds of ``images``."""
    from common.data.degrade import KINDS, degrade

    by_level: dict[str, dict[int, list[float]]] = {k: {lv: [] for lv in range(1, 6)} for k in SCALES}
    for img in images:
        for kind in KINDS:
            for lv in range(1, 6):
                terms = fused_label(degrade(img, kind, level=lv, seed=seed), img).terms()
                for k, v in terms.items():
                    by_level[k][lv].append(v)
    return {k: {lv: float(np.median(v)) for lv, v in levels.items()} for k, levels in by_level.items()}


CALIBRATION_SOURCES = ("mate-backgrounds", "opencv-doc", "plasma-workspace-wallpapers", "scikit-image")


def calibration_images(n: int = 12, side: int = 768) -> list[np.ndarray]:
    """Every k-th natural photo of CALIBRATION_SOURCES in the catalogue, downscaled to ``side`` (needs ``dqa data
    fetch``); photos catalogued later leave the calibration, and so SCALES, as it was."""
    from common.data.build import fit_long_side, load_source
    from common.data.catalogue import load_catalogue, missing_files
    from common.data.sources import data_dir

    photos = [e for e in load_catalogue() if e.tag == "photo" and e.source in CALIBRATION_SOURCES]
    if missing_files(photos):
        raise DqaError("calibration needs the catalogue photos; run `dqa data fetch` first")
    fit = fit_long_side(side)
    return [fit(load_source(data_dir() / e.path)) for e in photos[:: max(1, len(photos) // n)][:n]]


def main(argv: list[str] | None = None) -> None:
    """Print the median distortion terms per severity on catalogue photos (where SCALES comes from)."""
    argparse.ArgumentParser(description=main.__doc__).parse_args(argv)
    for term, levels in calibrate(calibration_images()).items():
        print(f"{term:10s} " + " ".join(f"L{lv}={v:.4f}" for lv, v in levels.items()))


if __name__ == "__main__":
    main()

"""The image degradation space of the data engine: each kind has five graded severities and a continuous
parameter for training, and is deterministic given a seed (DESIGN section 5).

``degrade(img, kind, level=3, seed=0)`` applies severity 1-5; ``degrade(img, kind, value=x)`` applies a
continuous parameter value. Inputs and outputs are HxWx3 uint8 RGB arrays.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

Array = np.ndarray


@dataclass(frozen=True)
class Kind:
    """One degradation: its family, the parameter it takes, the five graded values, and the function."""

    name: str
    family: str
    param: str
    levels: tuple[float, float, float, float, float]  # severity 1 (mild) .. 5 (severe)
    fn: Callable[[Array, float, np.random.Generator], Array]


def _u8(x: Array) -> Array:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _filter(img: Array, kernel: Array) -> Array:
    k = kernel / kernel.sum()
    return _u8(np.stack([ndimage.convolve(img[..., c].astype(np.float32), k, mode="reflect") for c in range(3)], -1))


def gaussian_blur(img: Array, sigma: float, rng: np.random.Generator) -> Array:
    """Out-of-focus optics or soft upscaling: isotropic Gaussian blur."""
    return _u8(ndimage.gaussian_filter(img.astype(np.float32), (sigma, sigma, 0), mode="reflect"))


def motion_blur(img: Array, length: float, rng: np.random.Generator) -> Array:
    """Camera or subject motion: a line kernel of ``length`` pixels at a random angle."""
    n = int(np.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    angle = rng.uniform(0, np.pi)
    t = np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * n)
    xs, ys = np.rint(n // 2 + t * np.cos(angle)).astype(int), np.rint(n // 2 + t * np.sin(angle)).astype(int)
    k[ys.clip(0, n - 1), xs.clip(0, n - 1)] = 1
    return _filter(img, k)


def defocus_blur(img: Array, radius: float, rng: np.random.Generator) -> Array:
    """Lens defocus: a uniform disk (pillbox) kernel."""
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return _filter(img, (xx ** 2 + yy ** 2 <= radius ** 2 + 0.5).astype(np.float32))


def gaussian_noise(img: Array, sigma: float, rng: np.random.Generator) -> Array:
    """Additive white Gaussian noise of standard deviation ``sigma`` (0-255 scale)."""
    return _u8(img + rng.normal(0, sigma, img.shape))


def sensor_noise(img: Array, photons: float, rng: np.random.Generator) -> Array:
    """Poisson-Gaussian sensor noise: shot noise with ``photons`` at white level plus read noise (Foi et al. 2008)."""
    x = img.astype(np.float64) / 255
    shot = rng.poisson(x * photons) / photons
    return _u8((shot + rng.normal(0, 0.01 + 0.5 / photons, img.shape)) * 255)


def _codec(img: Array, fmt: str, **options: float) -> Array:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **options)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def jpeg(img: Array, quality: float, rng: np.random.Generator) -> Array:
    """JPEG at a quality factor (libjpeg scale, 4:2:0)."""
    return _codec(img, "JPEG", quality=int(round(quality)))


def webp(img: Array, quality: float, rng: np.random.Generator) -> Array:
    """Lossy WebP at a quality factor."""
    return _codec(img, "WEBP", quality=int(round(quality)), method=4)


def jpeg2000(img: Array, ratio: float, rng: np.random.Generator) -> Array:
    """JPEG 2000 at a compression ratio (ringing and blur rather than blocks)."""
    return _codec(img, "JPEG2000", quality_mode="rates", quality_layers=[float(ratio)])


_KERNELS = (Image.NEAREST, Image.BILINEAR, Image.BICUBIC, Image.LANCZOS)


def resample(img: Array, factor: float, rng: np.random.Generator) -> Array:
    """Down-scaling by ``factor`` and back with randomly chosen kernels (upload pipelines, pseudo-HD)."""
    h, w = img.shape[:2]
    down, up = (_KERNELS[i] for i in rng.integers(0, len(_KERNELS), 2))
    small = Image.fromarray(img).resize((max(1, round(w / factor)), max(1, round(h / factor))), down)
    return np.asarray(small.resize((w, h), up))


def contrast(img: Array, factor: float, rng: np.random.Generator) -> Array:
    """Contrast reduced to ``factor`` around the mean luminance (flat, hazy exposure)."""
    mean = img.mean()
    return _u8(mean + (img.astype(np.float32) - mean) * factor)


def brightness(img: Array, shift: float, rng: np.random.Generator) -> Array:
    """Exposure error: a gain that brightens or darkens by ``shift`` (fraction), clipping highlights or shadows."""
    gain = 1 + shift if rng.random() < 0.5 else 1 - shift
    return _u8(img.astype(np.float32) * gain)


def saturation(img: Array, factor: float, rng: np.random.Generator) -> Array:
    """Colour saturation scaled to ``factor`` (0 is grey)."""
    grey = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return _u8(grey[..., None] + (img - grey[..., None]) * factor)


def quantize(img: Array, colors: float, rng: np.random.Generator) -> Array:
    """Palette reduction to ``colors`` colours with Floyd-Steinberg dithering (GIFs, old screen captures)."""
    q = Image.fromarray(img).quantize(int(colors), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(q.convert("RGB"))


def low_light(img: Array, exposure: float, rng: np.random.Generator) -> Array:
    """Low-light capture: linearise, scale to ``exposure``, add sensor noise, re-encode with gamma
    (after the low-light synthesis of Lv et al., "Attention guided low-light image enhancement", IJCV 2021)."""
    lin = (img.astype(np.float64) / 255) ** 2.2 * exposure
    photons = 2000 * exposure + 20
    noisy = rng.poisson(lin * photons) / photons + rng.normal(0, 0.002, img.shape)
    return _u8(np.clip(noisy, 0, 1) ** (1 / 2.2) * 255)


# Jerlov water types: attenuation (1/m) for R, G, B and a background light (after Akkaynak & Treibitz, CVPR 2018)
JERLOV = {"I": ((0.30, 0.05, 0.03), (0.05, 0.35, 0.45)), "II": ((0.35, 0.08, 0.07), (0.06, 0.40, 0.45)),
          "III": ((0.40, 0.12, 0.15), (0.08, 0.42, 0.40)), "1C": ((0.45, 0.15, 0.35), (0.10, 0.45, 0.30)),
          "3C": ((0.55, 0.25, 0.65), (0.12, 0.40, 0.20))}


def underwater(img: Array, depth: float, rng: np.random.Generator) -> Array:
    """Underwater image formation at ``depth`` metres in a random Jerlov water type: I = J t + B (1 - t)."""
    beta, light = JERLOV[list(JERLOV)[rng.integers(0, len(JERLOV))]]
    t = np.exp(-np.asarray(beta) * depth)
    return _u8(img.astype(np.float64) * t + np.asarray(light) * 255 * (1 - t))


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("gaussian_blur", "blur", "sigma (px)", (0.7, 1.2, 2.0, 3.0, 5.0), gaussian_blur),
    Kind("motion_blur", "blur", "length (px)", (3, 6, 10, 16, 25), motion_blur),
    Kind("defocus_blur", "blur", "radius (px)", (1, 2, 3, 5, 7), defocus_blur),
    Kind("gaussian_noise", "noise", "sigma (0-255)", (3, 7, 12, 20, 35), gaussian_noise),
    Kind("sensor_noise", "noise", "photons at white", (2000, 600, 200, 70, 25), sensor_noise),
    Kind("jpeg", "compression", "quality", (70, 45, 28, 15, 6), jpeg),
    Kind("webp", "compression", "quality", (70, 40, 22, 10, 3), webp),
    Kind("jpeg2000", "compression", "compression ratio", (20, 45, 90, 180, 400), jpeg2000),
    Kind("resample", "resampling", "down-up factor", (1.5, 2, 3, 4, 6), resample),
    Kind("contrast", "color", "contrast factor", (0.8, 0.65, 0.5, 0.35, 0.2), contrast),
    Kind("brightness", "color", "exposure shift", (0.15, 0.3, 0.45, 0.6, 0.8), brightness),
    Kind("saturation", "color", "saturation factor", (0.75, 0.55, 0.35, 0.15, 0.0), saturation),
    Kind("quantize", "color", "colours", (128, 48, 20, 8, 4), quantize),
    Kind("low_light", "low_light", "exposure", (0.4, 0.2, 0.1, 0.05, 0.025), low_light),
    Kind("underwater", "underwater", "depth (m)", (1, 2.5, 4, 6, 9), underwater),
)}


def degrade(img: Array, kind: str, level: int | None = None, value: float | None = None, seed: int = 0) -> Array:
    """Apply one degradation at severity ``level`` (1-5) or a continuous parameter ``value``; same seed, same bytes."""
    if kind not in KINDS:
        raise ValueError(f"unknown degradation {kind!r}; choose one of {', '.join(KINDS)}")
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise TypeError("degrade expects an HxWx3 uint8 RGB array")
    if (level is None) == (value is None):
        raise ValueError("give exactly one of level (1-5) or value")
    k = KINDS[kind]
    if level is not None:
        if level not in (1, 2, 3, 4, 5):
            raise ValueError(f"level must be 1-5, got {level}")
        value = k.levels[level - 1]
    return k.fn(np.ascontiguousarray(img), float(value), np.random.default_rng(seed))


def table() -> str:
    """The Markdown parameter table of docs/degradations.md (``python -m common.data.degrade``)."""
    lines = ["# Image degradations", "",
             "Generated by `python -m common.data.degrade > docs/degradations.md` from `common/data/degrade.py`.",
             "Severity 1 is mild, 5 severe; training also samples continuous values between and around them.", "",
             "| kind | family | parameter | 1 | 2 | 3 | 4 | 5 | what it models |", "|---|---|---|---|---|---|---|---|---|"]
    for k in KINDS.values():
        doc = (k.fn.__doc__ or "").strip().split("\n")[0]
        lines.append(f"| `{k.name}` | {k.family} | {k.param} | " + " | ".join(f"{v:g}" for v in k.levels) + f" | {doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")

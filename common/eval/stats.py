"""Agreement statistics between model scores and labels: SRCC, KRCC, PLCC and RMSE after the VQEG logistic, AUC.

Every function takes plain arrays, leaves out pairs where either side is not finite, and returns NaN
(never raises) when the statistic is undefined: too few items, or a constant side. :func:`undefined`
says why in words, for the notes of an evaluation table.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

log = logging.getLogger(__name__)

MIN_ITEMS = 3  # with two items every rank correlation is +-1
MIN_LOGISTIC = 6  # the logistic has 4 parameters; fewer points than this leave it under-determined


def finite_pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as float arrays, without the positions where either is NaN or infinite."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"scores and labels differ in length ({len(x)} vs {len(y)})")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def undefined(x: np.ndarray, y: np.ndarray, min_items: int = MIN_ITEMS) -> str | None:
    """Why a correlation of ``x`` with ``y`` cannot be computed (after dropping non-finite pairs), or None."""
    x, y = finite_pairs(x, y)
    if len(x) < min_items:
        return f"{len(x)} items with a finite score and label; at least {min_items} are needed"
    if np.ptp(x) == 0:
        return "the scores are constant"
    if np.ptp(y) == 0:
        return "the labels are constant"
    return None


def _defined(x: np.ndarray, y: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray] | None:
    reason = undefined(x, y)
    if reason is not None:
        log.debug("%s is undefined: %s", what, reason)
        return None
    return finite_pairs(x, y)


def srcc(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank-order correlation (ties get average ranks); NaN when undefined."""
    xy = _defined(x, y, "SRCC")
    return np.nan if xy is None else float(stats.spearmanr(*xy).statistic)


def krcc(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall rank correlation, tau-b (corrected for ties); NaN when undefined."""
    xy = _defined(x, y, "KRCC")
    return np.nan if xy is None else float(stats.kendalltau(*xy).statistic)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson linear correlation of the raw values; NaN when undefined."""
    xy = _defined(x, y, "PLCC")
    return np.nan if xy is None else float(np.corrcoef(*xy)[0, 1])


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG's 4-parameter logistic (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2, monotonic in x.

    VQEG, "Final report on the validation of objective models of video quality assessment, phase II", 2003.
    """
    return b2 + (b1 - b2) * special.expit((x - b3) / max(abs(b4), 1e-12))


@dataclass(frozen=True)
class Mapping:
    """A fitted monotonic map from scores to the label scale: ``kind`` is "logistic" or "linear"."""

    kind: str
    params: tuple[float, ...]
    center: float  # scores are standardised, (x - center) / scale, before the map: it keeps the fit well-conditioned
    scale: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.center) / self.scale
        if self.kind == "logistic":
            return logistic4(z, *self.params)
        return self.params[0] * z + self.params[1]


def fit_mapping(x: np.ndarray, y: np.ndarray) -> Mapping:
    """Fit the 4-parameter logistic from ``x`` (scores) to ``y`` (labels), or a line when that fails.

    Scores are standardised first. The fit starts from the label range (b1, b2 = max, min, swapped when
    the scores fall as the labels rise), the middle of the scores (b3 = 0) and one standard deviation
    as the slope scale (b4 = 1). It falls back to a least-squares line when there are fewer than
    ``MIN_LOGISTIC`` points, when ``curve_fit`` does not converge or gives non-finite values, or when
    the fitted logistic fits worse than the line (a logistic can approach any line, so a worse fit
    means it stopped at a poor local minimum). ``x`` and ``y`` must be finite with ``x`` not constant.
    """
    center, scale = float(np.mean(x)), float(np.std(x))
    z = (x - center) / scale
    slope, intercept = np.polyfit(z, y, 1)
    line = Mapping("linear", (float(slope), float(intercept)), center, scale)
    if len(x) < MIN_LOGISTIC:
        return line
    lo, hi = float(np.min(y)), float(np.max(y))
    p0 = (hi, lo, 0.0, 1.0) if slope >= 0 else (lo, hi, 0.0, 1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optimize.OptimizeWarning)
            params, _ = optimize.curve_fit(logistic4, z, y, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        log.debug("logistic fit failed (%s); using a linear map", exc)
        return line
    fit = Mapping("logistic", tuple(float(p) for p in params), center, scale)
    residual = fit(x) - y
    if not np.all(np.isfinite(residual)) or np.sum(residual ** 2) > np.sum((line(x) - y) ** 2):
        log.debug("logistic fit is worse than a line; using a linear map")
        return line
    return fit


@dataclass(frozen=True)
class Correlations:
    """Agreement of scores with labels over ``n`` finite pairs; ``note`` says why values are NaN, if they are."""

    n: int
    srcc: float
    krcc: float
    plcc: float
    rmse: float
    mapping: str | None  # "logistic" or "linear": how scores were mapped to labels for PLCC and RMSE
    note: str | None = None


def correlations(scores: np.ndarray, labels: np.ndarray) -> Correlations:
    """SRCC, KRCC, and PLCC and RMSE (label units) after the fitted :func:`fit_mapping` of scores to labels."""
    x, y = finite_pairs(scores, labels)
    reason = undefined(x, y)
    if reason is not None:
        return Correlations(len(x), np.nan, np.nan, np.nan, np.nan, None, reason)
    mapping = fit_mapping(x, y)
    fitted = mapping(x)
    return Correlations(len(x), srcc(x, y), krcc(x, y), pearson(fitted, y),
                        float(np.sqrt(np.mean((fitted - y) ** 2))), mapping.kind)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: P(positive score > negative score), ties counting half (Mann-Whitney U).

    NaN when either group has no finite score.
    """
    pos = np.asarray(positive, dtype=np.float64).ravel()
    neg = np.asarray(negative, dtype=np.float64).ravel()
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if len(pos) == 0 or len(neg) == 0:
        log.debug("AUC is undefined: %d positive and %d negative items", len(pos), len(neg))
        return np.nan
    ranks = stats.rankdata(np.concatenate([pos, neg]))  # average ranks: a tie adds half to U
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))

"""Temporal pooling of per-frame scores into one score per file."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def harmonic_mean(x: np.ndarray) -> float:
    """Harmonic mean shifted by one, as libvmaf pools VMAF, so that zeros stay finite."""
    return float(len(x) / np.sum(1.0 / (x + 1.0)) - 1.0)


POOLINGS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda x: float(np.mean(x)),
    "harmonic_mean": harmonic_mean,
    "min": lambda x: float(np.min(x)),
    "p5": lambda x: float(np.percentile(x, 5)),
}


def pool(scores: np.ndarray, method: str = "mean") -> float:
    """Pool finite per-frame scores with one of :data:`POOLINGS` (worst frames: ``min``, ``p5``)."""
    if method not in POOLINGS:
        raise ValueError(f"unknown pooling {method!r}; choose one of {', '.join(POOLINGS)}")
    x = np.asarray(scores, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("no finite frame scores to pool")
    return POOLINGS[method](x)


def summary(scores: np.ndarray) -> dict[str, float]:
    """min, max, mean and harmonic mean, the pooled statistics of VMAF's JSON output."""
    x = np.asarray(scores, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {}
    return {"min": float(x.min()), "max": float(x.max()), "mean": float(x.mean()), "harmonic_mean": harmonic_mean(x)}

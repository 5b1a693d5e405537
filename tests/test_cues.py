"""Distortion cues: each moves the way its distortion says, on one content, and bad input is refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from common.metrics.cues import N_CUES, distortion_cues
from tests import mediagen

BLUR_KEPT, NOISE, BLOCK_X, BLOCK_Y, MEAN_LUMA, SATURATION = 0, 7, 9, 10, 11, 17


def views(img: np.ndarray) -> torch.Tensor:
    """(1, 3, 160, 160) floats of the top-left 160x160 of an HxWx3 0-255 image (fragments and whole alike)."""
    return torch.from_numpy(np.clip(img[:160, :160], 0, 255) / 255).permute(2, 0, 1)[None].float()


def cues(img: np.ndarray) -> torch.Tensor:
    v = views(img)
    return distortion_cues(v, v)[0]


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return mediagen.image_content(320, 240).astype(np.float64)


def test_cues_follow_blur_noise_blocks_and_exposure(clean: np.ndarray) -> None:
    base = cues(clean)
    assert base.shape == (N_CUES,) and torch.isfinite(base).all()
    blurred = ndimage.gaussian_filter(clean, (2, 2, 0))
    assert cues(blurred)[BLUR_KEPT] > base[BLUR_KEPT] + 0.1  # blurring again takes less from a blurred frame
    noisy = clean + np.random.default_rng(0).normal(0, 12, clean.shape)
    assert cues(noisy)[NOISE] > base[NOISE] + 0.5
    h, w = clean.shape[:2]
    blocks = clean.reshape(h // 8, 8, w // 8, 8, 3).mean((1, 3)).repeat(8, 0).repeat(8, 1)
    assert cues(blocks)[BLOCK_X] > base[BLOCK_X] + 0.5 and cues(blocks)[BLOCK_Y] > base[BLOCK_Y] + 0.5
    assert cues(clean * 0.3)[MEAN_LUMA] < base[MEAN_LUMA] - 0.2
    grey = np.repeat(clean.mean(2, keepdims=True), 3, 2)
    assert cues(grey)[SATURATION] < base[SATURATION] - 0.05


def test_cues_ignore_patch_seams_and_refuse_bad_views(clean: np.ndarray) -> None:
    """A fragments view of flat patches at different levels has seams but no texture: no gradient is counted."""
    flat = np.kron(np.arange(25).reshape(5, 5) * 10.0, np.ones((32, 32)))[..., None].repeat(3, 2)
    v = views(flat)
    assert distortion_cues(v, v)[0, 6] < -13  # log of (almost) zero gradient energy
    with pytest.raises(ValueError, match="two"):
        distortion_cues(v, v[:, :, :128, :128])
    with pytest.raises(ValueError, match="patches"):
        distortion_cues(v[:, :, :150, :150], v[:, :, :150, :150])

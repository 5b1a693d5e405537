"""Degradations: deterministic from a seed, and quality falls with severity for every kind."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from common.data.degrade import KINDS, degrade
from common.media import rgb_array_to_luma

IMG = np.ascontiguousarray(data.astronaut()[96:352, 128:384])  # 256x256 natural photo


@pytest.mark.parametrize("kind", list(KINDS))
def test_same_seed_same_bytes(kind: str) -> None:
    a, b = degrade(IMG, kind, level=3, seed=11), degrade(IMG, kind, level=3, seed=11)
    assert a.dtype == np.uint8 and a.shape == IMG.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", list(KINDS))
def test_quality_falls_with_severity(kind: str) -> None:
    ref = rgb_array_to_luma(IMG).astype(np.float64)
    ssim = [structural_similarity(ref, rgb_array_to_luma(degrade(IMG, kind, level=lv, seed=5)).astype(np.float64),
                                  data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for lv in range(1, 6)]
    psnr = [peak_signal_noise_ratio(IMG, degrade(IMG, kind, level=lv, seed=5), data_range=255) for lv in range(1, 6)]
    teacher = np.asarray(ssim) + np.asarray(psnr) / 100  # stand-in until the fused teacher lands
    assert np.all(np.diff(teacher) < 0), (kind, np.round(ssim, 4), np.round(psnr, 2))


def test_validation() -> None:
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(IMG, "fog", level=1)
    with pytest.raises(ValueError, match="exactly one"):
        degrade(IMG, "jpeg")
    with pytest.raises(ValueError, match="1-5"):
        degrade(IMG, "jpeg", level=6)
    with pytest.raises(TypeError, match="uint8"):
        degrade(IMG.astype(np.float32), "jpeg", level=1)
    assert degrade(IMG, "jpeg", value=33).shape == IMG.shape


def test_docs_table_is_generated_from_the_code() -> None:
    from pathlib import Path

    from common.data.degrade import table

    doc = Path(__file__).resolve().parent.parent / "docs" / "degradations.md"
    assert doc.read_text() == table(), "regenerate with: python -m common.data.degrade > docs/degradations.md"

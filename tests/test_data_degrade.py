"""Degradations: deterministic from a seed, and quality falls with severity for every kind."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from common.data.degrade import KINDS, degrade
from common.data.teacher import fused_label

IMG = np.ascontiguousarray(data.astronaut()[96:352, 128:384])  # 256x256 natural photo
# 256x256 crops of the three bundled sample photos (common/samples/ref: astronaut, chelsea, coffee)
SAMPLES = (IMG, np.ascontiguousarray(data.chelsea()[20:276, 100:356]), np.ascontiguousarray(data.coffee()[100:356, 150:406]))


@pytest.mark.parametrize("kind", list(KINDS))
def test_same_seed_same_bytes(kind: str) -> None:
    a, b = degrade(IMG, kind, level=3, seed=11), degrade(IMG, kind, level=3, seed=11)
    assert a.dtype == np.uint8 and a.shape == IMG.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kind", list(KINDS))
def test_fused_teacher_falls_with_severity(kind: str) -> None:
    for i, img in enumerate(SAMPLES):
        labels = [fused_label(degrade(img, kind, level=lv, seed=5), img).fused for lv in range(1, 6)]
        assert np.all(np.diff(labels) < 0) and 0 < labels[-1] < labels[0] < 100, (kind, i, np.round(labels, 2))


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

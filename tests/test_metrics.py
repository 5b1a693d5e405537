"""Full-reference metrics against scikit-image, pytorch-msssim, numpy references of the papers' code, and vmaf-torch."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from skimage import data, metrics

from common.metrics import VmafFeatures, gmsd, gmsd_map, ms_ssim, psnr, ssim, ssim_map

METRICS = (psnr, ssim, ms_ssim, gmsd)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma in float64 0..255."""
    rgb = rgb.astype(np.float64)
    return rgb if rgb.ndim == 2 else rgb @ np.array([0.299, 0.587, 0.114])


def _jpeg(y: np.ndarray, quality: int = 20) -> np.ndarray:
    """Round-trip through Pillow's JPEG encoder."""
    buf = io.BytesIO()
    Image.fromarray(np.round(y).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf), dtype=np.float64)


def _noise(y: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise, clipped to 0..255."""
    return np.clip(y + np.random.default_rng(seed).normal(0, sigma, y.shape), 0, 255)


def _t(*images: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Stack HxW arrays into a (B,1,H,W) tensor."""
    return torch.tensor(np.stack(images), dtype=dtype)[:, None]


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, np.ndarray, list[np.ndarray]]]:
    """(name, ref, [jpeg q20, noise sigma 10, blur sigma 2]) for three skimage images."""
    out = []
    for name in ("astronaut", "camera", "coffee"):
        ref = _luma(getattr(data, name)())
        out.append((name, ref, [_jpeg(ref), _noise(ref, 10), ndimage.gaussian_filter(ref, 2)]))
    return out


def _np_ssim_cs(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean SSIM and CS with an 11x11 sigma 1.5 Gaussian, 'valid' region (Wang et al. 2004, ssim_index.m)."""
    g = np.exp(-np.arange(-5, 6) ** 2 / (2 * 1.5 ** 2))
    g /= g.sum()

    def f(a: np.ndarray) -> np.ndarray:
        return ndimage.correlate1d(ndimage.correlate1d(a, g, axis=0), g, axis=1)[5:-5, 5:-5]

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    return float(np.mean((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1) * cs)), float(np.mean(cs))


def _np_ms_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """MS-SSIM following msssim.m (Wang et al. 2003): symmetric-padded 2x2 mean, keep every second sample."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    out = 1.0
    for level, w in enumerate(weights):
        s, cs = _np_ssim_cs(x, y)
        out *= (s if level == len(weights) - 1 else cs) ** w
        x, y = (np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2)), mode="edge") for a in (x, y))
        x, y = ((a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4 for a in (x, y))
    return out


def _np_gmsd(x: np.ndarray, y: np.ndarray) -> float:
    """GMSD following GMSD.m (Xue et al. 2014): zero-padded 2x2 mean, downsample by 2, Prewitt/3, T=170, std2."""
    def grad(a: np.ndarray) -> np.ndarray:
        a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2)))
        a = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4
        k = np.array([[1.0, 0.0, -1.0]] * 3) / 3
        return np.hypot(ndimage.correlate(a, k, mode="constant"), ndimage.correlate(a, k.T, mode="constant"))

    gx, gy = grad(x), grad(y)
    return float(np.std((2 * gx * gy + 170) / (gx ** 2 + gy ** 2 + 170), ddof=1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_psnr_ssim_match_skimage(pairs, dtype) -> None:
    """PSNR within 1e-3 dB and SSIM within 1e-3 of scikit-image on JPEG, noise and blur."""
    for _name, ref, dists in pairs:
        d, r = _t(*dists, dtype=dtype), _t(*[ref] * 3, dtype=dtype)
        p, s = psnr(d, r), ssim(d, r)
        assert p.dtype == dtype and p.shape == (3,)
        for i, dist in enumerate(dists):
            assert abs(p[i].item() - metrics.peak_signal_noise_ratio(ref, dist, data_range=255)) < 1e-3
            expected = metrics.structural_similarity(ref, dist, data_range=255, gaussian_weights=True, sigma=1.5,
                                                     use_sample_covariance=False)
            assert abs(s[i].item() - expected) < 1e-3


def test_ms_ssim_matches_references(pairs) -> None:
    """MS-SSIM equals pytorch-msssim on even-sized pyramids and a numpy msssim.m port on any size."""
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    for name, ref, dists in pairs:
        d, r = _t(*dists), _t(*[ref] * 3)
        ours = ms_ssim(d, r)
        if name != "coffee":
            theirs = pytorch_msssim.ms_ssim(d, r, data_range=255, size_average=False)
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)
        for i, dist in enumerate(dists):
            assert abs(ours[i].item() - _np_ms_ssim(dist, ref)) < 1e-4
    ref, dist = pairs[0][1][:333, :251], pairs[0][2][0][:333, :251]
    assert abs(ms_ssim(_t(dist), _t(ref)).item() - _np_ms_ssim(dist, ref)) < 1e-4


def test_gmsd_matches_numpy_reference(pairs) -> None:
    """GMSD equals a numpy port of the authors' GMSD.m, on even and odd sizes."""
    for _name, ref, dists in pairs:
        ours = gmsd(_t(*dists, dtype=torch.float64), _t(*[ref] * 3, dtype=torch.float64))
        for i, dist in enumerate(dists):
            assert abs(ours[i].item() - _np_gmsd(dist, ref)) < 1e-8
    ref, dist = pairs[2][1][:201, :301], pairs[2][2][0][:201, :301]
    assert abs(gmsd(_t(dist), _t(ref)).item() - _np_gmsd(dist, ref)) < 1e-5


def test_identical_images(pairs) -> None:
    """Identical inputs give the ideal value: max_db, 1, 1, 0."""
    r = _t(pairs[0][1])
    assert psnr(r, r).item() == pytest.approx(100.0)
    assert psnr(r, r, max_db=60.0).item() == pytest.approx(60.0)
    assert ssim(r, r).item() == pytest.approx(1.0, abs=1e-6)
    assert ms_ssim(r, r).item() == pytest.approx(1.0, abs=1e-6)
    assert gmsd(r, r).item() == pytest.approx(0.0, abs=1e-6)


def test_monotone_in_severity(pairs) -> None:
    """More noise or blur lowers PSNR/SSIM/MS-SSIM and raises GMSD."""
    ref = pairs[1][1]
    r = _t(*[ref] * 4)
    noisy = _t(*[_noise(ref, s) for s in (2, 5, 10, 20)])
    blurry = _t(*[ndimage.gaussian_filter(ref, s) for s in (0.5, 1, 2, 4)])
    for d in (noisy, blurry):
        for metric, sign in ((psnr, -1), (ssim, -1), (ms_ssim, -1), (gmsd, 1)):
            assert torch.all(sign * metric(d, r).diff() > 0), metric.__name__


def test_batch_equals_single_calls(pairs) -> None:
    """A batch of 3 gives the same values as 3 single calls (float32, CPU)."""
    _name, ref, dists = pairs[0]
    d, r = _t(*dists), _t(*[ref] * 3)
    for metric in METRICS:
        batched = metric(d, r)
        assert batched.dtype == torch.float32 and batched.device.type == "cpu"
        single = torch.cat([metric(d[i:i + 1], r[i:i + 1]) for i in range(3)])
        torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)


def test_map_shapes(pairs) -> None:
    """Maps are (B,1,H-10,W-10) for SSIM and (B,1,ceil(H/2),ceil(W/2)) for GMS, and their means/stds give the scores."""
    ref, dist = pairs[2][1][:201, :300], pairs[2][2][0][:201, :300]
    d, r = _t(dist, dist), _t(ref, ref)
    assert ssim_map(d, r).shape == (2, 1, 191, 290)
    assert gmsd_map(d, r).shape == (2, 1, 101, 150)
    torch.testing.assert_close(ssim_map(d, r).mean(dim=(1, 2, 3)), ssim(d, r))


@pytest.mark.parametrize(("metric", "dist", "ref", "kwargs", "error", "match"), [
    (psnr, torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9), {}, ValueError, "same shape"),
    (psnr, torch.zeros(1, 8, 8), torch.zeros(1, 8, 8), {}, ValueError, r"\(B,1,H,W\)"),
    (ssim, torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), {}, ValueError, "luma"),
    (psnr, torch.zeros(1, 1, 8, 8, dtype=torch.uint8), torch.zeros(1, 1, 8, 8), {}, TypeError, r"\.float\(\)"),
    (psnr, np.zeros((1, 1, 8, 8)), torch.zeros(1, 1, 8, 8), {}, TypeError, "torch.Tensor"),
    (psnr, torch.zeros(0, 1, 8, 8), torch.zeros(0, 1, 8, 8), {}, ValueError, "empty"),
    (psnr, torch.full((1, 1, 8, 8), float("nan")), torch.zeros(1, 1, 8, 8), {}, ValueError, "NaN"),
    (gmsd, torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), float("inf")), {}, ValueError, "infinite"),
    (psnr, torch.full((1, 1, 8, 8), 200.0), torch.zeros(1, 1, 8, 8), {"data_range": 1.0}, ValueError, "data_range"),
    (psnr, torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), {"data_range": 0}, ValueError, "positive"),
    (ssim, torch.zeros(1, 1, 10, 64), torch.zeros(1, 1, 10, 64), {}, ValueError, "11x11"),
    (ms_ssim, torch.zeros(1, 1, 160, 256), torch.zeros(1, 1, 160, 256), {}, ValueError, "161x161.*5 scales"),
    (gmsd, torch.zeros(1, 1, 3, 64), torch.zeros(1, 1, 3, 64), {}, ValueError, "4x4"),
])
def test_validation(metric, dist, ref, kwargs, error, match) -> None:
    """Bad inputs raise TypeError/ValueError that say what to fix."""
    with pytest.raises(error, match=match):
        metric(dist, ref, **kwargs)


def _clip(frames: int = 6, blur: float = 2.0, noise: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 160x96 slowly moving pattern and its blurred, noisy copy as (T,1,H,W) float32 0..255."""
    yy, xx = np.mgrid[0:96, 0:160]
    ref = np.stack([127.5 + 100 * np.sin((xx + t) / 7) * np.cos((yy - t / 2) / 9) for t in range(frames)])
    dist = _noise(ndimage.gaussian_filter(ref, (0, blur, blur)), noise)
    return _t(*dist), _t(*ref)


def test_vmaf_split_matches_vmaf_torch() -> None:
    """Frames of two clips batched out of order, then per-clip scores, equal vmaf-torch's whole-clip call."""
    vmaf_torch = pytest.importorskip("vmaf_torch")
    vmaf = VmafFeatures()
    clips = [_clip(), _clip(frames=5, blur=3.0, noise=15.0)]
    items = [(c, t) for c, (_, ref) in enumerate(clips) for t in range(ref.shape[0])]
    order = np.random.default_rng(0).permutation(len(items))
    batch = [items[i] for i in order]

    def frame(c: int, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dist, ref = clips[c]
        return dist[t], ref[t], ref[max(t - 1, 0)]

    dist_b, ref_b, prev_b = (torch.stack(x) for x in zip(*(frame(c, t) for c, t in batch)))
    feats = vmaf.frame_features(dist_b, ref_b, prev_b)
    assert feats.shape == (len(items), len(VmafFeatures.names))
    direct = vmaf_torch.VMAF(clip_score=True)
    for c, (dist, ref) in enumerate(clips):
        rows = sorted((t, k) for k, (cc, t) in enumerate(batch) if cc == c)
        ours = vmaf.scores(feats[[k for _, k in rows]])
        torch.testing.assert_close(ours, direct(ref, dist).squeeze(1), atol=1e-3, rtol=0)
        assert torch.all(ours < 95)
    same = vmaf.scores(vmaf.frame_features(clips[0][1], clips[0][1], torch.cat([clips[0][1][:1], clips[0][1][:-1]])))
    assert torch.all(same > 95)
    assert vmaf.scores(feats[:1]).shape == (1,)


def test_vmaf_validation() -> None:
    """VMAF rejects tiny frames and misshaped feature tensors with clear messages."""
    pytest.importorskip("vmaf_torch")
    vmaf = VmafFeatures()
    small = torch.zeros(1, 1, 16, 64)
    with pytest.raises(ValueError, match="17x17"):
        vmaf.frame_features(small, small, small)
    with pytest.raises(ValueError, match="prev_ref_y and ref_y"):
        vmaf.frame_features(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 65))
    with pytest.raises(ValueError, match=r"\(T,6\)"):
        vmaf.scores(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="no frames"):
        vmaf.scores(torch.zeros(0, 6))


def test_vmaf_missing_package(monkeypatch) -> None:
    """Without vmaf-torch the error says how to install it."""
    monkeypatch.setitem(sys.modules, "vmaf_torch", None)
    with pytest.raises(ImportError, match=r"pip install 'dqa\[vmaf\]'"):
        VmafFeatures()


def test_vmaf_motion_matches_ffmpeg_vmafmotion(tmp_path) -> None:
    """The motion feature equals FFmpeg's own vmafmotion filter (an independent C port of libvmaf's), which
    prints two decimals (the full score is checked against libvmaf itself below)."""
    pytest.importorskip("vmaf_torch")
    import av

    from tests.mediagen import make_clip

    path = make_clip(tmp_path / "m.mp4", n_frames=12, size=(192, 144))
    vmaf = VmafFeatures()
    with av.open(str(path)) as c:
        graph = av.filter.Graph()
        src = graph.add_buffer(template=c.streams.video[0])
        node, sink = graph.add("vmafmotion"), graph.add("buffersink")
        src.link_to(node)
        node.link_to(sink)
        graph.configure()
        ffmpeg, ys = [], []
        for frame in c.decode(video=0):
            plane = frame.planes[0]
            y = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:frame.height, :frame.width]
            ys.append(torch.from_numpy(y.astype(np.float32))[None])
            graph.push(frame)
            ffmpeg.append(float(graph.pull().metadata["lavfi.vmafmotion.score"]))
    ref = torch.stack(ys)
    ours = vmaf.frame_features(ref, ref, torch.cat([ref[:1], ref[:-1]]))[:, 1].numpy()
    assert np.abs(ours - np.array(ffmpeg)).max() <= 0.006 and np.mean(ffmpeg) > 0.5


def test_vmaf_matches_libvmaf(tmp_path) -> None:
    """Per-frame VMAF of the registered model equals Netflix's libvmaf (the C library, in the FFmpeg build
    that imageio-ffmpeg ships) with its float model vmaf_float_v0.6.1 (docs/teachers.md)."""
    pytest.importorskip("vmaf_torch")
    pytest.importorskip("imageio_ffmpeg")
    from common.metrics.libvmaf import libvmaf_frames
    from common.registry import load_model
    from tests.mediagen import make_clip

    ref = make_clip(tmp_path / "ref.mp4", n_frames=10, size=(256, 192), options={"crf": "8", "preset": "fast"})
    dist = make_clip(tmp_path / "dist.mp4", n_frames=10, size=(256, 192), options={"crf": "36", "preset": "fast"})
    theirs = libvmaf_frames(dist, ref)["vmaf"]
    ours = np.array([f.score for f in load_model("vmaf", device="cpu").score(dist, ref=ref).frames])
    assert len(ours) == len(theirs) == 10 and 20 < theirs.mean() < 95
    assert np.abs(ours - theirs).max() < 0.02, np.round(ours - theirs, 4)

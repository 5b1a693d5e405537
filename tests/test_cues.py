"""Distortion cues: each moves the way its distortion says, on one content, and bad input is refused; bitstream
cues follow the bits an encoder spent."""
from __future__ import annotations

import math
from pathlib import Path

import av
import av.logging
import numpy as np
import pytest
import torch
from scipy import ndimage

from common.errors import MediaError
from common.media import BitstreamStats, Quantiser, bitstream_stats, keyframe_quantiser
from common.metrics.cues import BPP_SIZE_EXPONENT, N_BITSTREAM, N_CUES, bitstream_cues, distortion_cues
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


def test_the_fast_blur_and_quantiles_give_the_reference_values() -> None:
    """The cues' shifted-sum blur, Laplacian and noise operator and partial-selection quantiles are speed-ups of
    conv2d and torch.quantile: the same values (the quantiles bit for bit)."""
    from common.metrics.cues import _blur, _laplacian_and_noise, _quantiles

    g = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    for sigma in (0.7, 1.5):
        r = max(1, int(3 * sigma + 0.5))
        t = torch.arange(-r, r + 1, dtype=g.dtype)
        k = torch.exp(-t ** 2 / (2 * sigma ** 2))
        k = k / k.sum()
        pad, conv = torch.nn.functional.pad, torch.nn.functional.conv2d
        rows = conv(pad(g, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        ref = conv(pad(rows, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
        assert torch.allclose(_blur(g, sigma), ref, atol=1e-6)
    kernels = torch.tensor([[[0, 1, 0], [1, -4, 1], [0, 1, 0]], [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]],
                           dtype=g.dtype).unsqueeze(1)
    lap, noise = torch.nn.functional.conv2d(g, kernels).abs().mean((2, 3)).unbind(1)
    fast = _laplacian_and_noise(g)
    assert torch.allclose(fast[0], lap, atol=1e-6) and torch.allclose(fast[1], noise, atol=1e-6)
    for n in (1, 2, 25, 25600):
        x = torch.rand(4, n, generator=torch.Generator().manual_seed(n))
        qs = (0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0)
        assert torch.equal(_quantiles(x, qs), torch.quantile(x, torch.tensor(qs), dim=1))


def test_bitstream_cues_read_what_the_encoder_spent(tmp_path: Path) -> None:
    fine = mediagen.make_clip(tmp_path / "fine.mp4", n_frames=20, size=(128, 96), gop=10)
    coarse = mediagen.make_clip(tmp_path / "coarse.mp4", n_frames=20, size=(128, 96), gop=10, options={"crf": "45"})
    a, b = bitstream_stats(fine), bitstream_stats(coarse)
    assert (a.codec, a.width, a.height, a.frames, a.key_frames) == ("h264", 128, 96, 20, 2)
    assert a.bits_per_pixel("key") > a.bits_per_pixel("inter")
    for which in ("all", "key", "inter"):
        assert a.bits_per_pixel(which) > 2 * b.bits_per_pixel(which)
    with pytest.raises(ValueError, match="which"):
        a.bits_per_pixel("p")
    ca, cb = bitstream_cues(a), bitstream_cues(b)
    assert ca.shape == (N_BITSTREAM,) and ca[:5].tolist() == [1, 1, 0, 0, 0]
    size = 128 * 96 / (640 * 360)
    assert ca[5] == pytest.approx(math.log2(a.bits_per_pixel() * size ** BPP_SIZE_EXPONENT))
    assert (ca[5:8] > cb[5:8]).all()
    assert ca[8] == pytest.approx(math.log2(size))
    big = bitstream_cues(BitstreamStats("h264", 1280, 720, 10, 1, 1e5, 1e4))  # 4x the pixels: 2^(2 * 0.35) more bpp
    assert big[8] == 0 and big[5] == pytest.approx(math.log2((1e5 + 9 * 1e4) / 10 / (1280 * 720) * 4 ** 0.35))
    vp9 = mediagen.make_clip(tmp_path / "v.webm", n_frames=4, size=(64, 48), codec="libvpx-vp9")
    assert bitstream_cues(bitstream_stats(vp9))[:5].tolist() == [1, 0, 0, 1, 0]
    assert not bitstream_cues(None).any()  # images, raw video
    mpeg4 = mediagen.make_clip(tmp_path / "m.avi", n_frames=4, size=(64, 48), codec="mpeg4")
    assert not bitstream_cues(bitstream_stats(mpeg4)).any()  # a codec the models were not trained on: unknown
    assert bitstream_stats(mediagen.make_raw_yuv(tmp_path / "r.yuv", 2, 16, 16)) is None
    assert bitstream_stats(mediagen.make_y4m(tmp_path / "r.y4m", 2, 16, 16)) is None
    intra = BitstreamStats("av1", 640, 360, 4, 4, 8e4, None)  # every frame a keyframe
    assert intra.bits_per_pixel("inter") == intra.bits_per_pixel("all") == 8e4 / (640 * 360)
    assert bitstream_cues(intra)[:5].tolist() == [1, 0, 0, 0, 1]


def test_the_keyframe_quantiser_is_read_for_h264_hevc_and_vp9(tmp_path: Path) -> None:
    """The first keyframe's H.264 QP and VP9 quantiser index (from the decoder) rise with the CRF; HEVC's slice QP
    (parsed from the bitstream) equals the encoder's fixed QP in MP4, Matroska and MPEG-TS; MPEG-4, raw video and
    .y4m report none, and the cues keep the quantiser columns at zero then."""
    h264 = {crf: keyframe_quantiser(mediagen.make_clip(tmp_path / f"h{crf}.mp4", n_frames=4, size=(128, 96),
                                                         options={"crf": str(crf)})) for crf in (18, 40)}
    assert {q.codec for q in h264.values()} == {"h264"}
    assert 14 < h264[18].qp < h264[40].qp <= 51
    vp9 = {crf: keyframe_quantiser(mediagen.make_clip(tmp_path / f"v{crf}.webm", n_frames=4, size=(64, 48),
                                                        codec="libvpx-vp9", options={"crf": str(crf), "b:v": "0"}))
           for crf in (10, 55)}
    assert {q.codec for q in vp9.values()} == {"vp9"} and vp9[10].qp < vp9[55].qp <= 255
    for qp, ext in ((30, "mp4"), (22, "mkv"), (40, "ts")):  # ipratio=1: the keyframe gets the fixed QP itself
        hevc = mediagen.make_clip(tmp_path / f"e{qp}.{ext}", n_frames=4, size=(128, 96), codec="libx265",
                                  options={"x265-params": f"qp={qp}:ipratio=1:log-level=error"})
        assert keyframe_quantiser(hevc) == Quantiser("hevc", float(qp))
    stats = bitstream_stats(tmp_path / "h40.mp4")
    cues = bitstream_cues(stats, h264[40])
    assert cues[9] == pytest.approx(h264[40].qp / 51) and not cues[10:13].any() and cues[-1] == 1
    assert torch.equal(bitstream_cues(stats)[:9], cues[:9]) and not bitstream_cues(stats)[9:].any()
    assert not bitstream_cues(stats, vp9[10])[9:].any()  # a quantiser of another codec is not read
    hevc_cues = bitstream_cues(bitstream_stats(tmp_path / "e30.mp4"), Quantiser("hevc", 30.0))
    assert hevc_cues[2] == 1 and hevc_cues[10] == pytest.approx(30 / 51) and hevc_cues[-1] == 1
    mpeg4 = mediagen.make_clip(tmp_path / "m.avi", n_frames=4, size=(64, 48), codec="mpeg4")
    assert keyframe_quantiser(mpeg4) is None
    assert keyframe_quantiser(mediagen.make_y4m(tmp_path / "r.y4m", 2, 16, 16)) is None
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(MediaError):
        keyframe_quantiser(bad)


def _ffmpeg_base_q_idx(path: Path) -> int:
    """base_q_idx of a file's first AV1 frame as FFmpeg's own header parser (the trace_headers filter) logs it."""
    from av.bitstream import BitStreamFilterContext

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        av.logging.set_level(av.logging.INFO)
        try:
            with av.logging.Capture() as logs:
                trace = BitStreamFilterContext("trace_headers", stream)
                trace.filter(next(p for p in container.demux(stream) if p.size))
        finally:
            av.logging.set_level(None)
    return next(int(text.rsplit("=", 1)[1]) for _, _, text in logs if "base_q_idx" in text)


def test_the_av1_quantiser_matches_ffmpegs_header_parser(tmp_path: Path) -> None:
    """AV1's keyframe base_q_idx, parsed while demuxing, equals what FFmpeg's own AV1 header parser reads, in MP4,
    Matroska and IVF, with tiles, 128-pixel superblocks and superres; it rises with the CRF and lands in the AV1
    quantiser column of the cues."""
    cases = {"crf20.mp4": ("lp=1", 20), "crf50.mp4": ("lp=1", 50), "tiles.mkv": ("lp=1:tile-columns=1:tile-rows=1", 35),
             "sb128.ivf": ("lp=1:sb-size=128", 35), "superres.mkv": ("lp=1:superres-mode=1:superres-denom=12", 35)}
    read = {}
    for name, (params, crf) in cases.items():
        path = mediagen.make_clip(tmp_path / name, n_frames=3, size=(320, 180), codec="libsvtav1",
                                  options={"preset": "12", "crf": str(crf), "svtav1-params": params})
        read[name] = keyframe_quantiser(path)
        assert read[name] == Quantiser("av1", float(_ffmpeg_base_q_idx(path))), name
    assert read["crf20.mp4"].qp < read["crf50.mp4"].qp <= 255
    cues = bitstream_cues(bitstream_stats(tmp_path / "crf50.mp4"), read["crf50.mp4"])
    assert cues[4] == 1 and cues[12] == pytest.approx(read["crf50.mp4"].qp / 255) and cues[-1] == 1
    assert not cues[9:12].any()


def test_the_av1_parser_reads_only_key_frames_and_survives_garbage() -> None:
    from common.media.av1 import key_frame_q_index

    assert key_frame_q_index(b"", b"") is None
    assert key_frame_q_index(b"", bytes([6 << 3 | 2, 2, 0x20, 0])) is None  # a frame OBU before any sequence header
    assert key_frame_q_index(b"\x81\x00\x0c\x00" + bytes([1 << 3 | 2, 40]), b"\xff" * 8) is None
    assert key_frame_q_index(b"", bytes([1 << 3 | 2, 0x80])) is None  # a truncated size field


def test_the_hevc_parser_reads_only_idr_slices_and_survives_garbage() -> None:
    from common.media.hevc import idr_slice_qp

    assert idr_slice_qp(b"", b"") is None
    assert idr_slice_qp(b"", b"\x00\x00\x01" + bytes([1 << 1, 1]) + b"\xff" * 8) is None  # a non-IDR slice first
    assert idr_slice_qp(b"", b"\x00\x00\x01" + bytes([19 << 1, 1]) + b"\x80") is None  # an IDR slice, no PPS
    assert idr_slice_qp(b"\x01" + b"\x00" * 30, b"\x00\x00\x00\x05garbage") is None

"""Tests for common.media: image and video decoding, both video backends, raw YUV, and the samplers."""
from __future__ import annotations

import logging
import tracemalloc
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from common.errors import MediaError
from common.media import (IMAGE_EXTS, RAW_EXTS, VIDEO_EXTS, AllFrames, EveryNth, Frame, PerSecond, RawSpec,
                          UniformK, center_crop, find_media, fragments, grid_crops, load_image, media_kind,
                          parse_sampler, parse_size, probe_video, read_frames, read_media, resize, rgb_to_luma,
                          to_tensor)
from common.media import video as video_mod
from tests import mediagen as mg

N = 30
SIZE = (160, 120)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small clips in every container, made once for the module."""
    d = tmp_path_factory.mktemp("clips")
    return {
        "mp4": mg.make_clip(d / "a.mp4", N, SIZE, gop=10),
        "mkv": mg.make_clip(d / "a.mkv", N, SIZE),
        "mov": mg.make_clip(d / "a.mov", N, SIZE),
        "webm": mg.make_clip(d / "a.webm", N, SIZE, codec="libvpx-vp9", options={"deadline": "realtime",
                                                                                  "cpu-used": "8"}),
        "avi": mg.make_clip(d / "a.avi", N, SIZE, codec="mpeg4", options={"qscale": "2"}),
        "ts": mg.make_clip(d / "a.ts", N, SIZE),
        "y4m": mg.make_y4m(d / "a.y4m", N, *SIZE, fps=30),
        "10bit": mg.make_10bit_clip(d / "a10.mkv", N, SIZE),
    }


def codes(frames: list[Frame]) -> list[int]:
    return [mg.frame_code(f.data) for f in frames]


# ---------------------------------------------------------------- files and kinds

def test_extension_sets_and_media_kind() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"} == IMAGE_EXTS
    assert {".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v", ".ts", ".mpg", ".mpeg", ".ogv"} == VIDEO_EXTS
    assert RAW_EXTS == {".yuv"}
    assert media_kind("a/B.JPG") == "image"
    assert media_kind("clip.MKV") == "video"
    assert media_kind("x.yuv") == "video"
    with pytest.raises(MediaError, match="notes.txt"):
        media_kind("notes.txt")


def test_find_media(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for name in ["b.png", "sub/a.MP4", "sub/deep/c.yuv", "sub/notes.txt", ".secret.jpg", ".hidden/x.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    found = find_media([tmp_path, tmp_path / "b.png", str(tmp_path / "sub")])
    assert found == sorted([tmp_path / "b.png", tmp_path / "sub/a.MP4", tmp_path / "sub/deep/c.yuv"])
    with pytest.raises(MediaError, match="missing"):
        find_media([tmp_path / "missing"])


# ---------------------------------------------------------------- images

@pytest.mark.parametrize("ext,tol", [(".png", 0), (".bmp", 0), (".tif", 0), (".webp", 4), (".jpg", 4)])
def test_load_formats(tmp_path: Path, ext: str, tol: float) -> None:
    ref = mg.image_content(40, 30)
    Image.fromarray(ref).save(tmp_path / f"x{ext}", **({"quality": 98} if ext in (".jpg", ".webp") else {}))
    img = load_image(tmp_path / f"x{ext}")
    assert img.shape == (30, 40, 3) and img.dtype == np.uint8
    assert np.abs(img.astype(int) - ref).mean() <= tol


def test_png16_keeps_16_bits(tmp_path: Path) -> None:
    img = load_image(mg.make_png16(tmp_path / "x.png"))
    assert mg.png_ihdr(tmp_path / "x.png")[2:] == (16, 2)
    assert img.dtype == np.uint16 and np.array_equal(img, mg.image_content16(40, 30))


def test_tiff16_keeps_16_bits(tmp_path: Path) -> None:
    import tifffile

    ref = mg.image_content16(40, 30)
    tifffile.imwrite(tmp_path / "x.tif", ref, photometric="rgb")
    assert np.array_equal(load_image(tmp_path / "x.tif"), ref)


def test_png16_alpha_over_white(tmp_path: Path) -> None:
    img = load_image(mg.make_png16(tmp_path / "x.png", alpha=True)).astype(float)
    ref = mg.image_content16(40, 30).astype(float)
    a = 32768 / 65535
    assert np.abs(img[:, :20] - (ref[:, :20] * a + 65535 * (1 - a))).max() <= 1
    assert np.array_equal(img[:, 20:], ref[:, 20:])


def test_alpha_gray_cmyk_palette(tmp_path: Path) -> None:
    ref = mg.image_content(40, 30)
    img = load_image(mg.make_png_alpha(tmp_path / "a.png"))
    assert (img[:, :20] == 255).all() and np.array_equal(img[:, 20:], ref[:, 20:])
    gray = load_image(mg.make_gray(tmp_path / "g.png"))
    assert gray.dtype == np.uint8 and np.array_equal(gray, np.repeat(ref[..., :1], 3, -1))
    gray16 = load_image(mg.make_gray(tmp_path / "g16.png", bits=16))
    assert gray16.dtype == np.uint16 and np.array_equal(gray16, np.repeat(ref[..., :1], 3, -1).astype(np.uint16) * 257)
    cmyk = load_image(mg.make_cmyk_jpeg(tmp_path / "c.jpg"))
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    assert cmyk.shape == (30, 40, 3) and np.abs(cmyk.astype(int) - ref).mean() < 4
    Image.fromarray(ref).quantize(64).save(tmp_path / "p.png")
    assert np.abs(load_image(tmp_path / "p.png").astype(int) - ref).mean() < 8
    assert load_image(mg.make_1x1_png(tmp_path / "one.png")).tolist() == [[[10, 200, 30]]]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(tmp_path: Path, orientation: int) -> None:
    path = mg.make_exif_rotated_jpeg(tmp_path / "x.jpg", orientation=orientation)
    img = load_image(path)
    assert img.shape == (30, 40, 3)
    assert np.abs(img.astype(int) - mg.image_content(40, 30)).mean() < 3
    assert np.array_equal(img, np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB")))


@pytest.mark.parametrize("make", ["zero", "text", "trunc_jpg", "trunc_png", "trunc_png16"])
def test_broken_images(tmp_path: Path, make: str) -> None:
    bad = tmp_path / ("bad.png" if "png" in make else "bad.jpg")
    if make == "zero":
        mg.make_zero_byte(bad)
    elif make == "text":
        mg.make_text_as_jpg(bad)
    else:
        src = {"trunc_jpg": mg.make_cmyk_jpeg, "trunc_png": mg.make_png_alpha, "trunc_png16": mg.make_png16}[make]
        mg.make_truncated(src(tmp_path / f"src{bad.suffix}", size=(200, 150)), bad)
    with pytest.raises(MediaError, match="bad"):
        load_image(bad)


def test_pixel_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = mg.make_png_alpha(tmp_path / "x.png")
    with pytest.raises(MediaError, match="exceeds the limit of 1000"):
        load_image(path, max_pixels=1000)
    monkeypatch.setenv("DQA_MAX_PIXELS", "1000")
    with pytest.raises(MediaError, match="DQA_MAX_PIXELS"):
        load_image(path)
    assert load_image(path, max_pixels=1200).shape == (30, 40, 3)
    monkeypatch.delenv("DQA_MAX_PIXELS")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(MediaError, match="decompression-bomb"):
        load_image(path)


# ---------------------------------------------------------------- video

@pytest.mark.parametrize("name", ["mp4", "mkv", "mov", "webm", "avi", "ts", "y4m"])
def test_probe_and_read_every_container(clips: dict[str, Path], name: str) -> None:
    info = probe_video(clips[name])
    assert (info.width, info.height, info.n_frames, info.rotation, info.bit_depth) == (160, 120, N, 0, 8)
    assert info.fps == pytest.approx(30) and info.duration == pytest.approx(1.0, abs=0.05)
    frames = list(read_frames(clips[name], backend="pyav"))
    assert [f.index for f in frames] == list(range(N)) == codes(frames)
    assert all(f.data.shape == (120, 160, 3) and f.data.dtype == np.uint8 for f in frames)
    assert [f.time for f in frames] == pytest.approx([i / 30 for i in range(N)], abs=2e-3)


@pytest.mark.parametrize("name", ["mp4", "mkv", "webm", "avi"])
def test_backends_agree(clips: dict[str, Path], name: str) -> None:
    wanted = [29, 0, 1, 5, 11, 12, 12, 25, 40]
    got = {b: list(read_frames(clips[name], wanted, backend=b)) for b in ("pyav", "decord")}
    for frames in got.values():
        assert [f.index for f in frames] == [0, 1, 5, 11, 12, 25, 29] == codes(frames)
    for a, b in zip(got["pyav"], got["decord"]):
        assert a.time == pytest.approx(b.time, abs=2e-3)
        assert np.abs(a.data.astype(int) - b.data).mean() < 1.5


def test_pyav_sparse_seek_matches_sequential(clips: dict[str, Path]) -> None:
    dense = {f.index: f.data for f in read_frames(clips["mp4"], backend="pyav")}
    for wanted in ([3, 17, 28], [9, 10, 20], [0, 29], [25]):
        sparse = list(read_frames(clips["mp4"], wanted, backend="pyav"))
        assert [f.index for f in sparse] == wanted
        assert all(np.array_equal(f.data, dense[f.index]) for f in sparse)


def test_frames_past_the_end(clips: dict[str, Path]) -> None:
    for name in ("mkv", "mp4"):
        for backend in ("pyav", "decord"):
            assert [f.index for f in read_frames(clips[name], [28, 29, 30, 200], backend=backend)] == [28, 29]


def test_auto_backend_choice(clips: dict[str, Path]) -> None:
    info = probe_video(clips["mp4"])
    path = clips["mp4"]
    assert video_mod._backend_order(path, info, None, "auto")[0] == "pyav"
    sparse = [0] if video_mod.DECORD_MAX_DENSITY > 1 / N else None
    if sparse:
        assert video_mod._backend_order(path, info, sparse, "auto") == ["decord", "pyav"]
    assert video_mod._backend_order(path, probe_video(clips["10bit"]), [0], "auto") == ["pyav"]
    assert video_mod._backend_order(clips["y4m"], probe_video(clips["y4m"]), [0], "auto") == ["pyav"]
    frames = list(read_frames(path, [2, 20]))
    assert [f.index for f in frames] == [2, 20] == codes(frames)


def test_fallback_before_first_frame(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    def broken(path, info, wanted, pixels):
        raise RuntimeError("simulated decoder failure")
        yield

    monkeypatch.setitem(video_mod._DECODERS, "decord", broken)
    with caplog.at_level(logging.WARNING):
        frames = list(read_frames(clips["mp4"], [4, 8], backend="decord"))
    assert codes(frames) == [4, 8]
    assert "simulated decoder failure" in caplog.text and "falling back to pyav" in caplog.text


def test_failure_after_first_frame_is_media_error(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def half(path, info, wanted, pixels):
        yield Frame(0, 0.0, np.zeros((120, 160, 3), np.uint8))
        raise RuntimeError("broken stream")

    monkeypatch.setitem(video_mod._DECODERS, "pyav", half)
    frames = read_frames(clips["mp4"], backend="pyav")
    next(frames)
    with pytest.raises(MediaError, match="after frame 0"):
        next(frames)


def test_ten_bit(clips: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    info = probe_video(clips["10bit"])
    assert (info.bit_depth, info.pix_fmt, info.codec) == (10, "yuv420p10le", "hevc")
    with caplog.at_level(logging.WARNING):
        for backend in ("auto", "decord"):
            frames = list(read_frames(clips["10bit"], [0, 7, 29], backend=backend))
            assert codes(frames) == [0, 7, 29]
            assert all(f.data.dtype == np.uint16 for f in frames)
            ref = mg.clip_content(7, *SIZE, bits=16).astype(float)
            assert np.abs(frames[1].data - ref).mean() < 6 * 257 and np.unique(frames[1].data % 257).size > 1
    assert "8-bit RGB only" in caplog.text


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation(tmp_path: Path, rotation: int) -> None:
    path = mg.make_rotated_clip(tmp_path / "r.mp4", rotation, n_frames=6, size=SIZE)
    info = probe_video(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((120, 160) if rotation in (90, 270) else (160, 120))
    for backend in ("pyav", "decord"):
        frames = list(read_frames(path, [1, 4], backend=backend))
        assert all(f.data.shape == (info.height, info.width, 3) for f in frames)
        upright = [np.rot90(f.data, rotation // 90) for f in frames]  # undo the clockwise display rotation
        assert [mg.frame_code(u) for u in upright] == [1, 4]
        assert np.abs(upright[0].astype(int) - mg.clip_content(1, *SIZE)).mean() < 6


def test_rotated_decord_odd_width_falls_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = mg.make_rotated_clip(tmp_path / "r.mp4", 90, n_frames=3, size=(64, 48))
    with caplog.at_level(logging.WARNING):
        frames = list(read_frames(path, backend="decord"))
    assert [f.data.shape for f in frames] == [(64, 48, 3)] * 3


@pytest.mark.parametrize("make", ["zero", "text", "truncated_mp4", "audio_only", "unknown_codec", "empty_y4m",
                                  "empty_mkv"])
def test_broken_videos(tmp_path: Path, clips: dict[str, Path], make: str) -> None:
    bad = tmp_path / {"empty_y4m": "bad.y4m", "empty_mkv": "bad.mkv", "unknown_codec": "bad.avi"}.get(make, "bad.mp4")
    {"zero": mg.make_zero_byte, "text": mg.make_text_as_jpg, "audio_only": mg.make_audio_only,
     "unknown_codec": mg.make_unknown_codec, "empty_y4m": mg.make_empty_video, "empty_mkv": mg.make_empty_video,
     "truncated_mp4": lambda p: mg.make_truncated(clips["mp4"], p)}[make](bad)
    with pytest.raises(MediaError, match="bad"):
        probe_video(bad)
    for backend in ("pyav", "decord"):
        with pytest.raises(MediaError, match="bad"):
            list(read_frames(bad, backend=backend))


def test_truncated_stream_yields_what_it_can(tmp_path: Path, clips: dict[str, Path]) -> None:
    bad = mg.make_truncated(clips["mkv"], tmp_path / "t.mkv", keep=0.6)
    for backend in ("pyav", "decord"):
        frames = list(read_frames(bad, backend=backend))
        assert 0 < len(frames) < N
        # the last frame may be only partly in the file and come out error-concealed
        assert codes(frames[:-1]) == [f.index for f in frames[:-1]]


def test_read_frames_validation(clips: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="backend"):
        read_frames(clips["mp4"], backend="opencv")
    with pytest.raises(ValueError, match="non-negative"):
        read_frames(clips["mp4"], [-1])
    with pytest.raises(MediaError, match="exceeds the limit"):
        read_frames(clips["mp4"], max_pixels=100)
    with pytest.raises(MediaError, match="RawSpec"):
        probe_video(clips["mp4"].with_suffix(".yuv"))


def test_memory_stays_bounded(tmp_path: Path) -> None:
    path = mg.make_clip(tmp_path / "long.mp4", 90, (320, 240))
    frame_bytes = 320 * 240 * 3
    for backend in ("pyav", "decord"):
        tracemalloc.start()
        count = sum(1 for _ in read_frames(path, backend=backend))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert count == 90 and peak < 15 * frame_bytes


def test_read_media(tmp_path: Path, clips: dict[str, Path]) -> None:
    frames = list(read_media(mg.make_png_alpha(tmp_path / "x.png")))
    assert len(frames) == 1 and (frames[0].index, frames[0].time) == (0, 0.0)
    assert [f.index for f in read_media(clips["mkv"], [3, 4])] == [3, 4]


# ---------------------------------------------------------------- raw YUV

def _pyav_raw(path: Path, spec: RawSpec) -> list[np.ndarray]:
    """Decode a raw file with FFmpeg's rawvideo demuxer, as an independent reference."""
    opts = {"video_size": f"{spec.width}x{spec.height}", "pixel_format": spec.pix_fmt, "framerate": "25"}
    fmt = "rgb48le" if spec.bit_depth > 8 else "rgb24"
    with av.open(str(path), format="rawvideo", options=opts) as c:
        return [f.to_ndarray(format=fmt) for f in c.decode(video=0)]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p", "gray", "yuv420p10le", "yuv444p10le",
                                     "gray10le"])
def test_raw_yuv(tmp_path: Path, pix_fmt: str) -> None:
    path = mg.make_raw_yuv(tmp_path / "x.yuv", 4, 64, 48, pix_fmt)
    spec = RawSpec(64, 48, pix_fmt, fps=50)
    info = probe_video(path, raw=spec)
    assert (info.n_frames, info.bit_depth) == (4, spec.bit_depth)
    frames = list(read_frames(path, [1, 3, 9], raw=spec))
    assert [f.index for f in frames] == [1, 3] and frames[1].time == pytest.approx(0.06)
    assert frames[0].data.dtype == (np.uint16 if "10" in pix_fmt else np.uint8)
    assert codes(frames) == [1, 3]
    ref = _pyav_raw(path, spec)
    scale = 257 if spec.bit_depth > 8 else 1
    if pix_fmt.startswith("gray"):  # FFmpeg reads gray as full range; dqa reads it as a limited-range Y plane
        y = np.array(ref, float) / (65535 / 1023 * 4 if spec.bit_depth > 8 else 1)
        ref = np.clip((y - 16) * 255 / 219, 0, 255) * scale
    for f in frames:
        assert np.abs(f.data.astype(float) - ref[f.index]).mean() / scale < 2.5


def test_raw_errors(tmp_path: Path) -> None:
    path = mg.make_raw_yuv(tmp_path / "x.yuv", 2, 64, 48)
    with pytest.raises(MediaError, match="multiple of the frame size"):
        probe_video(path, raw=RawSpec(64, 50))
    with pytest.raises(MediaError, match="RawSpec"):
        read_frames(path)
    with pytest.raises(ValueError, match="yuv420p"):
        RawSpec(64, 48, "rgb24")
    with pytest.raises(ValueError, match="divisible"):
        RawSpec(63, 48)
    assert parse_size("1920x1080") == (1920, 1080) and parse_size(" 64X48 ") == (64, 48)
    for bad in ("1920", "axb", "0x10", "-5x4"):
        with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
            parse_size(bad)


def test_y4m_ten_bit(tmp_path: Path) -> None:
    path = mg.make_y4m(tmp_path / "x.y4m", 3, 64, 48, pix_fmt="yuv420p10le")
    frames = list(read_frames(path))
    assert codes(frames) == [0, 1, 2] and frames[0].data.dtype == np.uint16


# ---------------------------------------------------------------- temporal samplers

def test_temporal_samplers() -> None:
    assert AllFrames().indices(4, 30) == [0, 1, 2, 3]
    assert EveryNth(5).indices(23, 30) == [0, 5, 10, 15, 20]
    assert UniformK(4).indices(100, 30) == [12, 37, 62, 87]
    assert UniformK(10).indices(5, 30) == [0, 1, 2, 3, 4]
    assert PerSecond(2).indices(90, 30) == [7, 22, 37, 52, 67, 82]
    assert PerSecond(1).indices(300, 30) == [15 + 30 * i for i in range(10)]
    assert PerSecond(60).indices(5, 30) == [0, 1, 2, 3, 4]
    for spec in ("all", "every:5", "uniform:8", "fps:2", "fps:0.5"):
        assert str(parse_sampler(spec)) == spec
    assert parse_sampler(" Uniform:8 ") == UniformK(8)
    for bad in ("every:0", "uniform:-1", "fps:x", "foo", "every", "all:3", "uniform:2.5"):
        with pytest.raises(ValueError, match="uniform:K"):
            parse_sampler(bad)


# ---------------------------------------------------------------- tensors and spatial samplers

def test_to_tensor_and_luma() -> None:
    x8 = to_tensor(np.full((4, 5, 3), 255, np.uint8))
    assert x8.shape == (3, 4, 5) and x8.dtype == torch.float32 and torch.all(x8 == 1)
    x16 = to_tensor(np.full((4, 5, 3), 65535, np.uint16))
    assert torch.all(x16 == 1) and x16.is_contiguous()
    with pytest.raises(TypeError):
        to_tensor(np.zeros((4, 5, 3), np.float32))
    with pytest.raises(ValueError):
        to_tensor(np.zeros((4, 5), np.uint8))
    rgb = torch.zeros(2, 3, 4, 4)
    rgb[:, 0] = 1
    assert rgb_to_luma(rgb).shape == (2, 1, 4, 4) and torch.allclose(rgb_to_luma(rgb), torch.tensor(0.299))
    assert torch.allclose(rgb_to_luma(torch.ones(3, 2, 2)), torch.ones(1, 2, 2))


def test_resize() -> None:
    x = torch.rand(3, 480, 640)
    assert resize(x, 240).shape == (3, 240, 320)
    assert resize(x, 240, keep_aspect=False).shape == (3, 240, 240)
    assert resize(x, (100, 100)).shape == (3, 75, 100)
    assert resize(x, (100, 50), keep_aspect=False).shape == (3, 100, 50)
    assert resize(x[None], 120).shape == (1, 3, 120, 160)
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None]) % 2
    small = resize(checker.float().expand(3, 64, 64), 15)
    assert small.std() < 0.05 and small.mean() == pytest.approx(0.5, abs=0.02)


def test_center_crop_pads_by_replication() -> None:
    x = torch.arange(48.0).view(3, 4, 4)
    assert torch.equal(center_crop(x, 2), x[:, 1:3, 1:3])
    assert torch.equal(center_crop(x, (4, 2)), x[:, :, 1:3])
    big = center_crop(x, 6)
    assert big.shape == (3, 6, 6) and torch.equal(big[:, 1:5, 1:5], x) and torch.equal(big[:, 0, 1:5], x[:, 0])


def test_grid_crops() -> None:
    x = torch.rand(3, 100, 200)
    row = torch.stack([x[:, 25:75, i:i + 50] for i in (0, 50, 100, 150)])  # a wide frame gets one row of four
    assert torch.equal(grid_crops(x, 50, 4), row)
    square = torch.rand(3, 100, 100)
    crops = grid_crops(square, 50, 4)
    assert torch.equal(crops[0], square[:, :50, :50]) and torch.equal(crops[-1], square[:, 50:, 50:])
    assert torch.equal(grid_crops(x, 50, 1)[0], center_crop(x, 50))
    assert grid_crops(x, 50, 5).shape == (5, 3, 50, 50)
    assert grid_crops(torch.rand(3, 20, 20), 32, 2).shape == (2, 3, 32, 32)


def test_fragments() -> None:
    x = torch.rand(3, 1080, 1920)
    out = fragments(x)
    assert out.shape == (3, 224, 224) and torch.equal(out, fragments(x))
    cell_h, cell_w = 1080 // 7, 1920 // 7  # first cell is [0, 154) x [0, 274)
    top, left = (cell_h - 32) // 2, (cell_w - 32) // 2
    assert torch.equal(out[:, :32, :32], x[:, top:top + 32, left:left + 32])
    a = fragments(x, generator=torch.Generator().manual_seed(1))
    b = fragments(x, generator=torch.Generator().manual_seed(1))
    c = fragments(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    patch = a[:, :32, :32]  # native resolution: the patch is somewhere inside the first cell
    windows = x[:, :cell_h, :cell_w].unfold(1, 32, 1).unfold(2, 32, 1)
    assert (windows == patch[:, None, None]).all(0).all(-1).all(-1).any()
    assert fragments(torch.rand(3, 100, 150), grid=4, patch=16).shape == (3, 64, 64)
    assert fragments(torch.rand(3, 50, 80)).shape == (3, 224, 224)
    assert fragments(torch.rand(2, 3, 300, 500)).shape == (2, 3, 224, 224)


def test_variable_frame_rate_mkv_is_counted_not_estimated(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate([0, 33, 66, 400, 800, 1200, 1500, 1533, 1566, 1600]):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    info = probe_video(path)
    assert info.n_frames == 10
    assert len(list(read_frames(path, UniformK(4).indices(info.n_frames, info.fps)))) == 4


@pytest.mark.parametrize("ext,codec", [(".avi", "mpeg4"), (".mpg", "mpeg2video")])
@pytest.mark.parametrize("backend", ["auto", "pyav", "decord"])
def test_sparse_reads_return_the_right_frames_in_untimed_containers(tmp_path: Path, ext: str, codec: str,
                                                                    backend: str) -> None:
    """AVI carries decode-order timestamps and MPEG-PS seeks overshoot; both once gave missing or wrong frames."""
    path = mg.make_clip(tmp_path / f"b{ext}", n_frames=60, size=(160, 120), codec=codec, options={"bf": "2", "g": "12"})
    for wanted in ([13], [30, 31], [5, 25, 45]):
        got = [(f.index, mg.frame_code(f.data)) for f in read_frames(path, wanted, backend=backend)]
        assert got == [(i, i) for i in wanted], (wanted, got)

"""Generate test media at test time (nothing is committed): clips, odd images, raw YUV, Y4M and broken files.

Every generator writes to the path it is given and returns it as a Path. Clips carry their frame index as
a 10-bit barcode in a band at the top of each frame, so a test can check which frame it got and, for
rotated clips, in which orientation (`frame_code` reads it back).
"""
from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from PIL import Image

CODE_BITS = 10
Content = Callable[[int], np.ndarray]


def clip_content(i: int, width: int, height: int, bits: int = 8) -> np.ndarray:
    """Frame i of the default clip: a moving textured pattern with mild noise and the index barcode on top."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    wave = np.sin(2 * np.pi * (xx + 3 * i) / 37) * np.cos(2 * np.pi * (yy - 2 * i) / 23)
    noise = np.random.default_rng(i).normal(0, 3, (height, width)).astype(np.float32)
    img = np.stack([128 + 60 * wave + noise, 128 - 50 * wave + noise, 40 + 160 * (xx + yy) / (width + height)], -1)
    band = max(8, height // 10)
    cell = width / CODE_BITS
    for b in range(CODE_BITS):
        img[:band, int(b * cell):int((b + 1) * cell)] = 235 if (i >> b) & 1 else 20
    img = np.clip(img, 0, 255)
    if bits > 8:
        return (img * 257).astype(np.uint16)
    return img.astype(np.uint8)


def frame_code(img: np.ndarray) -> int:
    """Read back the frame index barcode written by `clip_content` (img HxWx3 uint8 or uint16, upright)."""
    luma = img.astype(np.float32).mean(-1) / (257.0 if img.dtype == np.uint16 else 1.0)
    height, width = luma.shape
    band = max(8, height // 10)
    cell = width / CODE_BITS
    code = 0
    for b in range(CODE_BITS):
        x0, x1 = int(b * cell), int((b + 1) * cell)
        inner = luma[band // 4:3 * band // 4, x0 + (x1 - x0) // 4:x1 - (x1 - x0) // 4]
        code |= int(inner.mean() > 128) << b
    return code


def make_clip(path: str | Path, n_frames: int = 30, size: tuple[int, int] = (320, 240), fps: int = 30,
              codec: str = "libx264", pix_fmt: str = "yuv420p", gop: int | None = None, rotation: int = 0,
              content: Content | None = None, options: dict[str, str] | None = None) -> Path:
    """Encode a clip of `n_frames` at `size` (width, height); container from the extension.

    rotation: clockwise display rotation (0/90/180/270) written as the container display matrix, like a
    phone held upright (rotation=90). content: i -> HxWx3 uint8 (or uint16 for >8-bit pix_fmt); default
    `clip_content`. options: extra encoder options (default CRF 18 for x264/x265, fast preset).
    """
    path = Path(path)
    width, height = size
    deep = "10" in pix_fmt or "12" in pix_fmt
    if content is None:
        def content(i: int) -> np.ndarray:
            return clip_content(i, width, height, 16 if deep else 8)
    opts = {"crf": "18", "preset": "veryfast"} if codec in ("libx264", "libx265") else {}
    if codec == "libx265":
        opts["x265-params"] = "log-level=error"
    if gop is not None:
        opts.update({"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"})
    opts.update(options or {})
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps, options=opts)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if rotation:
            stream.set_display_rotation(-rotation)
        for i in range(n_frames):
            data = content(i)
            fmt = "rgb48le" if data.dtype == np.uint16 else "rgb24"
            for packet in stream.encode(av.VideoFrame.from_ndarray(data, format=fmt)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_10bit_clip(path: str | Path, n_frames: int = 10, size: tuple[int, int] = (320, 240)) -> Path:
    """A 10-bit 4:2:0 clip (libx265 yuv420p10le, in an .mp4 or .mkv)."""
    return make_clip(path, n_frames, size, codec="libx265", pix_fmt="yuv420p10le")


def make_rotated_clip(path: str | Path, rotation: int = 90, n_frames: int = 10,
                      size: tuple[int, int] = (320, 240)) -> Path:
    """A phone-style MP4: landscape coded frames whose display matrix says rotate `rotation` degrees clockwise."""
    return make_clip(path, n_frames, size, rotation=rotation)


def make_audio_only(path: str | Path, seconds: float = 0.5) -> Path:
    """A file with an audio stream and no video stream (.mp4/.mkv)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100, layout="mono")
        n = int(44100 * seconds)
        for start in range(0, n, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return Path(path)


def make_empty_video(path: str | Path) -> Path:
    """A video with zero frames: a Y4M header alone (.y4m), or a Matroska header with a video track (other)."""
    path = Path(path)
    if path.suffix.lower() == ".y4m":
        path.write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")
        return path
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    return path


def make_unknown_codec(path: str | Path) -> Path:
    """An AVI whose video FourCC is 'ZZZZ', a codec that no decoder knows."""
    path = Path(path)
    make_clip(path.with_suffix(".tmp.avi"), 3, (64, 48), codec="mpeg4")
    data = path.with_suffix(".tmp.avi").read_bytes()
    path.with_suffix(".tmp.avi").unlink()
    for tag in (b"FMP4", b"fmp4", b"DIVX", b"XVID", b"mp4v"):
        data = data.replace(tag, b"ZZZZ")
    path.write_bytes(data)
    return path


def image_content(width: int, height: int) -> np.ndarray:
    """A deterministic RGB uint8 test picture: gradients plus a bright block in the top-left corner."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([255 * xx / max(1, width - 1), 255 * yy / max(1, height - 1),
                    np.full_like(xx, 90.0)], -1)
    img[:max(1, height // 4), :max(1, width // 4)] = 250
    return img.astype(np.uint8)


def image_content16(width: int, height: int) -> np.ndarray:
    """A deterministic RGB uint16 test picture that uses the low byte too (so 8-bit decoding is detectable)."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 977 % 65536, yy * 1531 % 65536, (xx * 37 + yy * 11) % 65536], -1).astype(np.uint16)


def make_png16(path: str | Path, size: tuple[int, int] = (40, 30), alpha: bool = False) -> Path:
    """A 16-bit RGB (or RGBA with a half-transparent left half) PNG holding `image_content16`."""
    width, height = size
    rgb = image_content16(width, height)
    if alpha:
        a = np.full((height, width, 1), 65535, np.uint16)
        a[:, :width // 2] = 32768
        rgb, fmt, enc = np.concatenate([rgb, a], -1), "rgba64le", "rgba64be"
    else:
        fmt, enc = "rgb48le", "rgb48be"
    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, enc
    frame = av.VideoFrame.from_ndarray(rgb, format=fmt).reformat(format=enc)
    Path(path).write_bytes(b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None)))
    return Path(path)


def make_cmyk_jpeg(path: str | Path, size: tuple[int, int] = (40, 30)) -> Path:
    """A CMYK JPEG of `image_content` (as Photoshop and print workflows produce)."""
    Image.fromarray(image_content(*size)).convert("CMYK").save(path, quality=95)
    return Path(path)


def make_png_alpha(path: str | Path, size: tuple[int, int] = (40, 30)) -> Path:
    """An RGBA PNG: `image_content` with the left half fully transparent and the right half opaque."""
    width, height = size
    a = np.full((height, width, 1), 255, np.uint8)
    a[:, :width // 2] = 0
    Image.fromarray(np.concatenate([image_content(width, height), a], -1), "RGBA").save(path)
    return Path(path)


def make_gray(path: str | Path, size: tuple[int, int] = (40, 30), bits: int = 8) -> Path:
    """A grayscale image (8-bit 'L' in any format, or 16-bit 'I;16' PNG) of the red channel of `image_content`."""
    gray = image_content(*size)[..., 0]
    if bits == 16:
        Image.fromarray(gray.astype(np.uint16) * 257).save(path)
    else:
        Image.fromarray(gray, "L").save(path)
    return Path(path)


def make_exif_rotated_jpeg(path: str | Path, size: tuple[int, int] = (40, 30), orientation: int = 6) -> Path:
    """A JPEG holding `image_content` stored so that EXIF Orientation (default 6: rotate 90 CW) makes it upright.

    Decoding with the orientation applied must give back `image_content(*size)`.
    """
    upright = Image.fromarray(image_content(*size))
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
               7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
    stored = upright.transpose(inverse[orientation]) if orientation in inverse else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(path, quality=98, subsampling=0, exif=exif)
    return Path(path)


def make_1x1_png(path: str | Path, color: tuple[int, int, int] = (10, 200, 30)) -> Path:
    """A one-pixel PNG."""
    Image.new("RGB", (1, 1), color).save(path)
    return Path(path)


def make_truncated(path_src: str | Path, path_dst: str | Path, keep: float = 0.5) -> Path:
    """Copy the first `keep` fraction of the bytes of `path_src` to `path_dst`."""
    data = Path(path_src).read_bytes()
    Path(path_dst).write_bytes(data[:int(len(data) * keep)])
    return Path(path_dst)


def make_zero_byte(path: str | Path) -> Path:
    """An empty file."""
    Path(path).write_bytes(b"")
    return Path(path)


def make_text_as_jpg(path: str | Path) -> Path:
    """A text file with an image extension."""
    Path(path).write_text("this is not an image\n" * 20)
    return Path(path)


_PLANES = {"yuv420p": (2, 2), "yuv422p": (2, 1), "yuv444p": (1, 1),
           "yuv420p10le": (2, 2), "yuv422p10le": (2, 1), "yuv444p10le": (1, 1), "gray": None, "gray10le": None}


def yuv_planes(rgb: np.ndarray, pix_fmt: str) -> bytes:
    """Convert an RGB frame to planar YUV bytes (BT.601 limited range, via libswscale) in `pix_fmt`."""
    if pix_fmt not in _PLANES:
        raise ValueError(f"unsupported pix_fmt {pix_fmt!r}; use one of {sorted(_PLANES)}")
    src = "rgb48le" if rgb.dtype == np.uint16 else "rgb24"
    sample = 2 if "10" in pix_fmt else 1
    gray = _PLANES[pix_fmt] is None  # the limited-range Y plane of a 4:4:4 conversion (swscale's gray is full range)
    target = ("yuv444p10le" if sample == 2 else "yuv444p") if gray else pix_fmt
    frame = av.VideoFrame.from_ndarray(rgb, format=src).reformat(format=target)
    out = io.BytesIO()
    for plane in frame.planes[:1] if gray else frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        out.write(rows[:, :plane.width * sample].tobytes())
    return out.getvalue()


def make_raw_yuv(path: str | Path, n: int, w: int, h: int, pix_fmt: str = "yuv420p") -> Path:
    """A headerless planar YUV file of n frames of `clip_content` (w, h even for subsampled formats)."""
    deep = "10" in pix_fmt
    with open(path, "wb") as f:
        for i in range(n):
            f.write(yuv_planes(clip_content(i, w, h, 16 if deep else 8), pix_fmt))
    return Path(path)


def make_y4m(path: str | Path, n: int, w: int, h: int, fps: int = 25, pix_fmt: str = "yuv420p") -> Path:
    """A YUV4MPEG2 file of n frames of `clip_content` (yuv420p, yuv422p, yuv444p or yuv420p10le)."""
    tags = {"yuv420p": "420jpeg", "yuv422p": "422", "yuv444p": "444", "yuv420p10le": "420p10"}
    if pix_fmt not in tags:
        raise ValueError(f"unsupported pix_fmt {pix_fmt!r}; use one of {sorted(tags)}")
    deep = "10" in pix_fmt
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C{tags[pix_fmt]}\n".encode())
        for i in range(n):
            f.write(b"FRAME\n" + yuv_planes(clip_content(i, w, h, 16 if deep else 8), pix_fmt))
    return Path(path)


def png_ihdr(path: str | Path) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG header, for tests that check what was written."""
    head = Path(path).read_bytes()[16:26]
    width, height, depth, ctype = struct.unpack(">IIBB", head)
    return width, height, depth, ctype

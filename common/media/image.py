"""Still images: decode to HxWx3 RGB (uint8, or uint16 for 16-bit PNG and TIFF) with orientation and alpha handled."""
from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import av
import numpy as np
from PIL import Image

from common.errors import MediaError

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION = 0x0112


def default_max_pixels() -> int:
    """Largest frame (width * height) dqa decodes, a decompression-bomb guard: env DQA_MAX_PIXELS, else 2**28."""
    text = os.environ.get("DQA_MAX_PIXELS")
    if not text:
        return 2 ** 28
    try:
        value = int(float(text))
    except ValueError:
        raise ValueError(f"DQA_MAX_PIXELS must be a pixel count such as 268435456, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"DQA_MAX_PIXELS must be positive, got {text!r}")
    return value


def check_pixels(path: str | Path, width: int, height: int, max_pixels: int | None) -> None:
    """Raise MediaError when a width x height frame is larger than max_pixels (default `default_max_pixels`)."""
    limit = default_max_pixels() if max_pixels is None else max_pixels
    if width * height > limit:
        raise MediaError(path, f"{width}x{height} = {width * height} pixels exceeds the limit of {limit} "
                               f"(a decompression-bomb guard); raise DQA_MAX_PIXELS if the file is trusted")


def orient(data: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF Orientation value (1-8) to an HxWxC array so that it displays upright."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[orientation](data)) if orientation in ops else data


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite an RGBA array over a white background, keeping its dtype."""
    top = 65535.0 if rgba.dtype == np.uint16 else 255.0
    alpha = rgba[..., 3:].astype(np.float32) / top
    out = rgba[..., :3].astype(np.float32) * alpha + top * (1 - alpha)
    return np.clip(out + 0.5, 0, top).astype(rgba.dtype)


def _png_depth(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from the PNG IHDR chunk, or None when the header is not a PNG one."""
    with open(path, "rb") as f:
        head = f.read(29)
    if len(head) < 29 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">BB", head[24:26])


def _deep_colour(path: Path, im: Image.Image) -> np.ndarray | None:
    """Decode 16-bit RGB(A) PNG and TIFF outside Pillow, which reduces them to 8 bits; None for other images."""
    if im.format == "PNG" and _png_depth(path) in ((16, 2), (16, 6)):
        with av.open(str(path)) as container:  # FFmpeg's PNG decoder keeps 16 bits
            frame = next(container.decode(video=0))
            return frame.to_ndarray(format="rgba64le" if frame.format.name == "rgba64be" else "rgb48le")
    if im.format == "TIFF" and im.mode in ("RGB", "RGBA") and set(im.tag_v2.get(258, ())) == {16}:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            data = page.asarray()
            return np.moveaxis(data, 0, -1) if page.axes.startswith("S") else data  # planar -> interleaved
    return None


def _pil_rgb(path: Path, im: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to RGB(A) uint8 (uint16 for 16-bit grayscale)."""
    if im.mode.startswith("I;16") or im.mode == "I":
        gray = np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
        return np.repeat(gray[..., None], 3, -1)
    if im.mode == "F":
        raise MediaError(path, "floating-point images are not supported; convert to 8 or 16 bits")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info):
        return np.asarray(im.convert("RGBA"))
    return np.asarray(im.convert("RGB"))


def to_uint8(img: np.ndarray) -> np.ndarray:
    """8-bit samples of a decoded image or frame: uint8 as it is, 16-bit (uint16) by dropping the low byte."""
    return img if img.dtype == np.uint8 else (img >> 8).astype(np.uint8)


def load_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image to upright HxWx3 RGB, uint8 (uint16 for 16-bit sources), alpha composited over white.

    The pixel count is checked from the header before decoding (`check_pixels`).
    """
    path = Path(path)
    limit = default_max_pixels() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # check_pixels is the guard
            with Image.open(path) as im:
                check_pixels(path, *im.size, limit)
                orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
                data = _deep_colour(path, im)
                if data is None:
                    im.load()
                    data = _pil_rgb(path, im)
    except MediaError:
        raise
    except Image.DecompressionBombError as e:
        raise MediaError(path, f"refused by Pillow's decompression-bomb guard: {e}") from e
    except Exception as e:  # Pillow, FFmpeg and tifffile raise many types (OSError, SyntaxError, ValueError, ...)
        raise MediaError(path, f"cannot decode image: {type(e).__name__}: {e}") from e
    if data.ndim != 3 or data.shape[2] not in (3, 4) or 0 in data.shape:
        raise MediaError(path, f"decoded to an unexpected array shape {data.shape}")
    return orient(_over_white(data) if data.shape[2] == 4 else data, orientation)

"""Media input for dqa: find, probe and decode images and videos, and sample frames in time and space."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from common.errors import MediaError
from common.media.image import IMAGE_EXTS, load_image, to_uint8
from common.media.raw import RAW_EXTS, RawSpec, parse_size
from common.media.samplers import (AllFrames, EveryNth, PerSecond, TemporalSampler, UniformK, UniformKeyframes,
                                   center_crop, fragments, grid_crops, parse_sampler, resize, rgb_array_to_luma,
                                   rgb_to_luma, sample_indices, to_tensor)
from common.media.video import (VIDEO_EXTS, BitstreamStats, Frame, Quantiser, VideoInfo, bitstream_stats,
                                keyframe_indices, keyframe_quantiser, probe_video, read_frames)

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "RAW_EXTS", "media_kind", "find_media", "RawSpec", "parse_size", "Frame",
           "VideoInfo", "load_image", "to_uint8", "probe_video", "read_frames", "read_media", "to_tensor", "rgb_to_luma",
           "rgb_array_to_luma", "TemporalSampler", "AllFrames", "EveryNth", "UniformK", "UniformKeyframes",
           "keyframe_indices", "BitstreamStats", "bitstream_stats", "Quantiser", "keyframe_quantiser", "PerSecond",
           "parse_sampler", "sample_indices", "resize", "center_crop", "grid_crops", "fragments"]


def media_kind(path: str | Path) -> str:
    """"image" or "video" from the file extension (raw .yuv counts as video); MediaError for anything else."""
    ext = Path(path).suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS or ext in RAW_EXTS:
        return "video"
    known = " ".join(sorted(IMAGE_EXTS | VIDEO_EXTS | RAW_EXTS))
    raise MediaError(path, f"unknown media extension {ext or '(none)'!r}; dqa reads {known}")


def find_media(paths: Sequence[str | Path]) -> list[Path]:
    """Media files among `paths`, sorted and deduplicated: files as given, folders searched recursively for known
    extensions with hidden files and folders skipped; MediaError for a path that does not exist."""
    known = IMAGE_EXTS | VIDEO_EXTS | RAW_EXTS
    found: dict[Path, Path] = {}
    for p in map(Path, paths):
        if p.is_file():
            found.setdefault(p.resolve(), p)
        elif p.is_dir():
            for f in p.rglob("*"):
                if f.suffix.lower() in known and f.is_file() and not any(
                        part.startswith(".") for part in f.relative_to(p).parts):
                    found.setdefault(f.resolve(), f)
        else:
            raise MediaError(p, "no such file or folder")
    return sorted(found.values())


def read_media(path: str | Path, indices: Sequence[int] | None = None, raw: RawSpec | None = None,
               backend: str = "auto", pixels: str = "rgb", info: VideoInfo | None = None) -> Iterator[Frame]:
    """Frames of any media file: an image gives one Frame(0, 0.0, data), a video its wanted frames.

    pixels="luma" gives HxW float32 luma on the 0-255 scale (see `read_frames`; BT.601 for images); ``info``
    is a video's `probe_video` result when the caller already has it.
    """
    if raw is None and media_kind(path) == "image":
        rgb = load_image(path)
        return iter([Frame(0, 0.0, rgb_array_to_luma(rgb) if pixels == "luma" else rgb)])
    return read_frames(path, indices, raw=raw, backend=backend, pixels=pixels, info=info)

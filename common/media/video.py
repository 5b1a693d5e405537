"""Video decoding: probe, then yield the wanted frames as RGB arrays through PyAV or decord, one at a time."""
from __future__ import annotations

import bisect
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from common.errors import MediaError
from common.media.av1 import key_frame_q_index
from common.media.hevc import idr_slice_qp
from common.media.image import check_pixels
from common.media.raw import RAW_EXTS, RawSpec, coded_luma, raw_frame_count, read_raw
from common.media.samplers import rgb_array_to_luma

log = logging.getLogger(__name__)

VIDEO_EXTS = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".y4m", ".m4v", ".ts", ".mpg", ".mpeg", ".ogv"})
BACKENDS = ("auto", "pyav", "decord")
PIXELS = ("rgb", "luma")

# "auto" uses decord when fewer than this fraction of the frames are wanted, PyAV otherwise. Measured here
# (best of 5 interleaved reads, as common.media.measure does) on 10-s 1080p30 H.264 clips (x264
# medium, CRF 21; GOP 30 at 6.3 Mb/s, GOP 250 at 3.5 Mb/s) on 2 cores: decord took 1.2-1.9x PyAV's time at
# every density (all, 1/4, 1/8, 1/15, 1/30, 1/60 and uniform:8). GOP 30: all 1.88 s vs 2.40 s, 1/8 1.34 vs 2.02,
# 1/30 0.34 vs 0.65, uniform:8 0.75 vs 1.04; GOP 250: all 1.63 vs 2.09, 1/30 1.06 vs 1.28. PyAV (FFmpeg 8)
# skips GOPs by seeking as decord (bundled FFmpeg 4.1) does and decodes faster, so no density favours decord:
# 0 keeps decord as the fallback and explicit choice. Re-measure on new hardware (`python -m
# common.media.measure CLIP --make 30`) and raise this if decord wins.
DECORD_MAX_DENSITY = 0.0
_DECORD_BATCH = 4  # frames per decord get_batch call (they share one buffer): bounded memory, few calls
# AVI stores decode-order timestamps (frames of a B-frame stream come out with shuffled pts) and MPEG program
# and transport streams seek by byte position, overshooting the keyframe asked for; decord's random access
# returns wrong frames in them. So these are decoded sequentially by PyAV, frames counted in output order.
_SEQUENTIAL_EXTS = frozenset({".avi", ".mpg", ".mpeg", ".ts"})
_PYAV_ONLY_EXTS = frozenset({".y4m"}) | _SEQUENTIAL_EXTS  # decord cannot demux these, or misplaces frames


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: index in presentation order, time in seconds, and its pixels: HxWx3 RGB uint8
    (uint16 above 8 bits), or with pixels="luma" an HxW float32 luma plane on the 0-255 scale."""

    index: int
    time: float
    data: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` learns: display size (after rotation), frame count (from the container, else counted
    by demuxing), rate, clockwise display rotation in degrees, bits per sample, decoded pixel format and codec."""

    path: str
    width: int
    height: int
    n_frames: int
    fps: float
    duration: float
    rotation: int
    bit_depth: int
    pix_fmt: str
    codec: str


def probe_video(path: str | Path, raw: RawSpec | None = None) -> VideoInfo:
    """Read a video's size, rate, frame count, rotation and bit depth (decodes the first frame to be sure it can)."""
    path = Path(path)
    if raw is not None:
        n = raw_frame_count(path, raw)
        return VideoInfo(str(path), raw.width, raw.height, n, raw.fps, n / raw.fps, 0, raw.bit_depth,
                         raw.pix_fmt, "rawvideo")
    if path.suffix.lower() in RAW_EXTS:
        raise MediaError(path, "raw YUV has no header: give its frame size and pixel format (CLI: --size WxH "
                               "--pix-fmt yuv420p --fps 25; Python: raw=RawSpec(width, height, pix_fmt, fps))")
    try:
        with av.open(str(path)) as container:
            return _probe_container(path, container)
    except MediaError:
        raise
    except Exception as e:  # FFmpeg reports problems through many exception types
        raise MediaError(path, f"cannot read video: {type(e).__name__}: {e}") from e


def _probe_container(path: Path, container: av.container.InputContainer) -> VideoInfo:
    """Fill VideoInfo from an open container."""
    if not container.streams.video:
        raise MediaError(path, "no video stream in the file")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise MediaError(path, "unknown or unsupported video codec: no decoder for it in FFmpeg")
    first = next(container.decode(stream), None)
    if first is None:
        raise MediaError(path, "the video stream holds no decodable frames")
    rotation = round((-first.rotation % 360) / 90) % 4 * 90
    width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
    fps = float(stream.average_rate or stream.guessed_rate or 0)
    if fps <= 0:
        log.warning("%s: no frame rate in the file, assuming 25 fps", path)
        fps = 25.0
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = container.duration / av.time_base if container.duration else 0.0
    n_frames = stream.frames or _count_packets(path)  # MKV/WebM carry no count; VFR makes duration*fps wrong
    return VideoInfo(str(path), width, height, n_frames, fps, duration or n_frames / fps, rotation,
                     first.format.components[0].bits, first.format.name, stream.codec_context.name)


def _count_packets(path: Path) -> int:
    """Frames of the first video stream, counted by demuxing (no decoding): a few ms per 10 MB."""
    with av.open(str(path)) as container:
        return max(1, sum(1 for p in container.demux(container.streams.video[0]) if p.size))


def read_frames(path: str | Path, indices: Sequence[int] | None = None, raw: RawSpec | None = None,
                backend: str = "auto", max_pixels: int | None = None, pixels: str = "rgb",
                info: VideoInfo | None = None) -> Iterator[Frame]:
    """Yield the wanted frames (all when indices is None) in increasing index order; missing ones are skipped.

    backend: "pyav" (sequential decode, seeks over keyframes for sparse requests), "decord" (random access)
    or "auto" (decord below DECORD_MAX_DENSITY wanted/total frames, else PyAV); the other backend takes
    over when the chosen one fails before its first frame. Probing happens now, decoding lazily.
    pixels="luma" yields the coded Y plane as FFmpeg's psnr/ssim filters and libvmaf see it (limited range
    as coded, deeper samples scaled to 0-255), BT.601 luma of RGB for RGB-coded video; PyAV only.
    ``info`` is this file's `probe_video` result when the caller already has it (probing decodes a frame and,
    for containers without a frame count, demuxes the whole file).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if pixels not in PIXELS:
        raise ValueError(f"unknown pixels {pixels!r}; use one of {', '.join(PIXELS)}")
    path = Path(path)
    info = info or probe_video(path, raw)
    check_pixels(path, info.width, info.height, max_pixels)
    wanted = _wanted(indices, info)
    if raw is not None:
        return _raw_frames(path, raw, wanted, pixels)
    order = ["pyav"] if pixels == "luma" else _backend_order(path, info, wanted, backend)
    return _with_fallback(path, info, wanted, order, pixels)


def _wanted(indices: Sequence[int] | None, info: VideoInfo) -> list[int] | None:
    """Sorted unique frame indices (None for all); ValueError for negatives or non-integers."""
    if indices is None:
        return None
    out = set()
    for i in indices:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
            raise ValueError(f"frame indices must be non-negative integers, got {i!r}")
        if i < info.n_frames:
            out.add(int(i))
    return sorted(out)


def _backend_order(path: Path, info: VideoInfo, wanted: list[int] | None, backend: str) -> list[str]:
    """Backends to try, best first: decord only for 8-bit sources in containers it can read."""
    decord_ok = info.bit_depth <= 8 and path.suffix.lower() not in _PYAV_ONLY_EXTS
    if backend == "decord":
        if path.suffix.lower() in _SEQUENTIAL_EXTS:
            log.warning("%s: decord misplaces frames in %s files; decoding with PyAV", path, path.suffix)
            return ["pyav"]
        return ["decord", "pyav"]
    density = 1.0 if wanted is None else len(wanted) / max(1, info.n_frames)
    if backend == "auto" and decord_ok and density < DECORD_MAX_DENSITY:
        return ["decord", "pyav"]
    return ["pyav", "decord"] if decord_ok else ["pyav"]


def _with_fallback(path: Path, info: VideoInfo, wanted: list[int] | None, order: list[str],
                   pixels: str = "rgb") -> Iterator[Frame]:
    """Run the first backend; if it fails before yielding a frame, log a warning and try the next one."""
    for n, name in enumerate(order):
        frames = _DECODERS[name](str(path), info, wanted, pixels)
        try:
            first = next(frames, None)
        except Exception as e:  # any decoder failure before the first frame means: try the other backend
            if n + 1 == len(order):
                raise MediaError(path, f"cannot decode video ({name}): {type(e).__name__}: {e}") from e
            log.warning("%s: %s backend failed (%s: %s); falling back to %s", path, name, type(e).__name__,
                        (str(e).strip() or "no message").splitlines()[0], order[n + 1])
            continue
        if first is None:
            return
        yield first
        last = first.index
        try:
            for frame in frames:
                last = frame.index
                yield frame
        except Exception as e:
            raise MediaError(path, f"decoding failed after frame {last} ({name}): {type(e).__name__}: {e}") from e
        return


def _raw_frames(path: Path, raw: RawSpec, wanted: list[int] | None, pixels: str = "rgb") -> Iterator[Frame]:
    """Frames of a raw YUV file; read errors become MediaError."""
    try:
        for i, data in read_raw(path, raw, wanted, pixels):
            yield Frame(i, i / raw.fps, data)
    except (OSError, ValueError) as e:  # e.g. the file shrank after probing
        raise MediaError(path, f"cannot read raw video: {type(e).__name__}: {e}") from e


def _rotate(data: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a frame clockwise by `rotation` degrees (a multiple of 90) for display."""
    return np.ascontiguousarray(np.rot90(data, -(rotation // 90))) if rotation else data


@dataclass(frozen=True)
class _PacketIndex:
    """Presentation timestamps of all video packets, sorted (position = frame index), and keyframe indices."""

    pts: list[int]
    keyframes: list[int]
    position: dict[int, int]

    def keyframe_before(self, index: int) -> int:
        """Index of the last keyframe at or before frame `index` (0 when there is none)."""
        k = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[k] if k >= 0 else 0


@dataclass(frozen=True)
class BitstreamStats:
    """What the encoder spent on a video, from demuxing alone: the codec (FFmpeg's codec name, whichever decoder
    reads it: "h264", "hevc", "vp9", "av1", ...), the coded frame
    size, and the sizes of the keyframe and other packets. Bits per pixel fall as compression rises, and at a given
    quantiser they rise with the detail and motion of the content."""

    codec: str
    width: int
    height: int
    frames: int
    key_frames: int
    key_bits: float  # mean bits per keyframe packet
    inter_bits: float | None  # mean bits per other packet; None where every frame is a keyframe

    def bits_per_pixel(self, which: str = "all") -> float:
        """Mean coded bits per pixel of ``which`` frames: "all", "key" or "inter" (the keyframes' where there are
        no others)."""
        if which not in ("all", "key", "inter"):
            raise ValueError(f"which must be 'all', 'key' or 'inter', got {which!r}")
        inter = self.key_bits if self.inter_bits is None else self.inter_bits
        bits = {"key": self.key_bits, "inter": inter,
                "all": (self.key_bits * self.key_frames + inter * (self.frames - self.key_frames)) / self.frames}
        return bits[which] / (self.width * self.height)


@dataclass(frozen=True)
class Quantiser:
    """The quantiser of a video's first keyframe: for H.264 the QP as the decoder reports it (0-51; the frame's QP
    plus its macroblocks' deltas, averaged by area), for HEVC the first slice's QP (0-51, read from the bitstream:
    :mod:`common.media.hevc`), for VP9 and AV1 the base quantiser index (0-255; AV1's read from the bitstream:
    :mod:`common.media.av1`). At a given frame size it says how coarsely the encoder quantised, whatever the
    content; bits per pixel say that only together with the content's detail."""

    codec: str  # "h264", "hevc", "vp9" or "av1"
    qp: float


@dataclass(frozen=True)
class _Demuxed:
    index: _PacketIndex | None  # None when timestamps are missing or repeat
    bitstream: BitstreamStats | None  # None when no packet holds data or the coded size is unknown
    header_quantiser: Quantiser | None  # HEVC and AV1: the first packet's quantiser, read from its headers


# Codecs whose first keyframe's quantiser is read from the bitstream's headers while demuxing (their FFmpeg
# decoders export none): (extradata, first packet) -> quantiser or None.
_HEADER_QUANTISERS: dict[str, Callable[[bytes, bytes], int | None]] = {
    "hevc": idr_slice_qp, "av1": key_frame_q_index}


def _demuxed(path: str) -> _Demuxed:
    """Demux (without decoding) to map timestamps to frame indices, add up the packet sizes and (HEVC, AV1) read
    the first picture's quantiser from its headers. Cached per file version, as the sampler (keyframes), the
    decoder (seeking) and bitstream-aware models all need it."""
    st = os.stat(path)
    return _cached_demux(path, st.st_mtime_ns, st.st_size)


def _packet_index(path: str) -> _PacketIndex | None:
    return _demuxed(path).index


@functools.lru_cache(maxsize=16)
def _cached_demux(path: str, mtime_ns: int, size: int) -> _Demuxed:
    pts: list[int | None] = []
    keys, sizes = [], []
    header_qp = None
    with av.open(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        codec = ctx.codec.canonical_name if ctx else ""
        width, height = (ctx.width, ctx.height) if ctx else (0, 0)
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            if codec in _HEADER_QUANTISERS and not sizes:
                header_qp = _HEADER_QUANTISERS[codec](bytes(ctx.extradata or b""), bytes(packet))
            pts.append(packet.pts)
            keys.append(packet.is_keyframe)
            sizes.append(packet.size)
    return _Demuxed(_index(pts, keys), _bitstream(codec, width, height, sizes, keys),
                    None if header_qp is None else Quantiser(codec, float(header_qp)))


def _index(pts: list[int | None], keys: list[bool]) -> _PacketIndex | None:
    if any(p is None for p in pts):
        return None
    order = sorted(pts)  # type: ignore[type-var]
    position = {p: i for i, p in enumerate(order)}
    if len(position) != len(order):
        return None
    return _PacketIndex(order, sorted(position[p] for p, k in zip(pts, keys) if k), position)


def _bitstream(codec: str, width: int, height: int, sizes: list[int], keys: list[bool]) -> BitstreamStats | None:
    if not sizes or width <= 0 or height <= 0:
        return None
    s, k = np.asarray(sizes, dtype=np.float64) * 8, np.asarray(keys, dtype=bool)
    if not k.any():  # streams that flag no keyframe: count the first packet as one
        k[0] = True
    return BitstreamStats(codec, width, height, len(s), int(k.sum()), float(s[k].mean()),
                          float(s[~k].mean()) if (~k).any() else None)


def _compressed_demux(path: Path) -> _Demuxed | None:
    """The cached demux pass of a compressed video (None for raw video and .y4m, whose frames are uncompressed); a
    MediaError when the file cannot be demuxed."""
    if path.suffix.lower() in RAW_EXTS | {".y4m"}:
        return None
    try:
        return _demuxed(str(path))
    except (av.error.FFmpegError, IndexError, OSError) as e:
        raise MediaError(path, f"cannot demux video: {type(e).__name__}: {e}") from e


def bitstream_stats(path: str | Path) -> BitstreamStats | None:
    """The :class:`BitstreamStats` of a video file (None for raw video, streams without sized packets and unknown
    coded sizes); a MediaError when the file cannot be demuxed. Shares the cached demux pass with keyframe
    sampling where that runs (it is skipped for containers whose timestamps cannot be trusted)."""
    demuxed = _compressed_demux(Path(path))
    return None if demuxed is None else demuxed.bitstream


# FFmpeg's AVVideoEncParams (libavutil/video_enc_params.h, unchanged since FFmpeg 4.4): the header of the
# "venc_params" side data a decoder exports per frame, then ``nb_blocks`` AVVideoBlockParams of ``block_size`` bytes
# (src_x, src_y, w, h, delta_qp as ints) from ``blocks_offset``.
_ENC_PARAMS = np.dtype({"names": ["nb_blocks", "blocks_offset", "block_size", "type", "qp"],
                        "formats": ["=u4", "=u8", "=u8", "=i4", "=i4"], "offsets": [0, 8, 16, 24, 28], "itemsize": 64})
_QUANTISER_CODECS = {0: "vp9", 1: "h264"}  # AVVideoEncParamsType values whose quantisers the models read


def _frame_quantiser(data: bytes) -> Quantiser | None:
    """The :class:`Quantiser` in one frame's "venc_params" side data (None for other codecs or a malformed buffer)."""
    if len(data) < _ENC_PARAMS.itemsize:
        return None
    head = np.frombuffer(data, _ENC_PARAMS, 1)[0]
    codec = _QUANTISER_CODECS.get(int(head["type"]))
    n, size, offset = int(head["nb_blocks"]), int(head["block_size"]), int(head["blocks_offset"])
    if codec is None or (n and (size < 20 or offset + n * size > len(data))):
        return None
    qp = float(head["qp"])
    if n:
        block = np.dtype({"names": ["w", "h", "delta"], "formats": ["=i4"] * 3, "offsets": [8, 12, 16],
                          "itemsize": size})
        blocks = np.frombuffer(data, block, n, offset)
        area = blocks["w"].astype(np.float64) * blocks["h"]
        if area.sum() > 0:
            qp += float((blocks["delta"] * area).sum() / area.sum())
    return Quantiser(codec, qp)


def keyframe_quantiser(path: str | Path) -> Quantiser | None:
    """The :class:`Quantiser` of a video file's first frame (a keyframe): for HEVC and AV1 read while demuxing (an
    IDR picture's slice header, a key frame's header; no decoding), for H.264 and VP9 by decoding that frame with
    FFmpeg's encoder-parameter export. None for other codecs, first pictures of other types, raw video and .y4m; a
    MediaError when the file cannot be read."""
    path = Path(path)
    demuxed = _compressed_demux(path)
    if demuxed is None or demuxed.bitstream is None:
        return None
    if demuxed.bitstream.codec in _HEADER_QUANTISERS:
        return demuxed.header_quantiser
    if demuxed.bitstream.codec not in _QUANTISER_CODECS.values():
        return None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"
            stream.codec_context.options = {"export_side_data": "venc_params"}
            frame = next(container.decode(stream), None)
    except (av.error.FFmpegError, IndexError, OSError) as e:
        raise MediaError(path, f"cannot decode video: {type(e).__name__}: {e}") from e
    if frame is None:
        return None
    data = [bytes(sd) for sd in frame.side_data if sd.type.name == "VIDEO_ENC_PARAMS"]
    return _frame_quantiser(data[0]) if data else None


def keyframe_indices(path: str | Path) -> list[int] | None:
    """Frame indices of the keyframes of a video file, by demuxing only (a few ms per 10 MB); None where they
    cannot be trusted (raw video, containers with decode-order or missing timestamps)."""
    path = Path(path)
    if path.suffix.lower() in _SEQUENTIAL_EXTS | RAW_EXTS:
        return None
    try:
        index = _packet_index(str(path))
    except (av.error.FFmpegError, IndexError) as e:
        raise MediaError(path, f"cannot demux video: {type(e).__name__}: {e}") from e
    return None if index is None else index.keyframes


def _y_plane(frame: av.VideoFrame) -> np.ndarray:
    """The coded luma plane of a YUV/gray frame as float32 on the 0-255 scale; BT.601 luma for RGB frames."""
    fmt = frame.format
    if fmt.is_rgb or fmt.has_palette or fmt.is_big_endian or not fmt.name.startswith(("yuv", "nv", "gray")):
        return rgb_array_to_luma(frame.to_ndarray(format="rgb48le" if fmt.components[0].bits > 8 else "rgb24"))
    bits = fmt.components[0].bits
    dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)
    plane = frame.planes[0]
    y = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)[:, :plane.width]
    return coded_luma(y, bits)


def _pyav_frames(path: str, info: VideoInfo, wanted: list[int] | None, pixels: str = "rgb") -> Iterator[Frame]:
    """Decode with PyAV in presentation order, converting only wanted frames to arrays.

    For sparse requests it first demuxes the packet timestamps, then seeks to the keyframe before the next
    wanted frame whenever that keyframe lies beyond the frame just decoded (skipping whole GOPs). Containers
    whose timestamps cannot be trusted (``_SEQUENTIAL_EXTS``) are decoded from the start, frames counted.
    """
    sequential = Path(path).suffix.lower() in _SEQUENTIAL_EXTS
    index = _packet_index(path) if wanted is not None and not sequential else None
    fmt = "rgb48le" if info.bit_depth > 8 else "rgb24"
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE" if index is not None else "AUTO"  # frame threads pay a restart per seek
        if index is not None and set(wanted) <= set(index.keyframes):
            stream.codec_context.skip_frame = "NONKEY"  # only keyframes wanted: skip decoding every other frame
        start, time_base = stream.start_time or 0, stream.time_base
        frames = container.decode(stream)
        pos, w, last_seek = -1, 0, -1
        while wanted is None or w < len(wanted):
            if index is not None:
                key = index.keyframe_before(wanted[w])
                if key > pos + 1 and key > last_seek:
                    container.seek(index.pts[key], stream=stream)
                    frames, last_seek = container.decode(stream), key
            frame = next(frames, None)
            if frame is None:
                return
            if index is None:
                pos += 1
            elif frame.pts in index.position:
                pos = index.position[frame.pts]
            else:
                raise RuntimeError(f"decoded a frame with timestamp {frame.pts} that no packet has")
            if wanted is not None:
                while w < len(wanted) and wanted[w] < pos:
                    w += 1
                if w == len(wanted) or wanted[w] != pos:
                    continue
                w += 1
            timed = frame.pts is not None and time_base and not sequential
            time = float((frame.pts - start) * time_base) if timed else pos / info.fps
            data = _y_plane(frame) if pixels == "luma" else frame.to_ndarray(format=fmt)
            yield Frame(pos, time, _rotate(data, info.rotation))


def _decord_frames(path: str, info: VideoInfo, wanted: list[int] | None, pixels: str = "rgb") -> Iterator[Frame]:
    """Decode with decord's random-access VideoReader, a few frames per get_batch call so memory stays bounded.

    decord 0.6 applies the container's rotation itself (checked by the tests), so frames are not rotated here.
    """
    if info.bit_depth > 8:
        raise RuntimeError(f"decord decodes to 8-bit RGB only; this video has {info.bit_depth} bits")
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
    n = len(reader)
    todo = range(n) if wanted is None else [i for i in wanted if i < n]
    for start in range(0, len(todo), _DECORD_BATCH):
        chunk = list(todo[start:start + _DECORD_BATCH])
        batch = reader.get_batch(chunk).asnumpy()
        if batch.shape[1:] != (info.height, info.width, 3):
            raise RuntimeError(f"decord returned frames of shape {batch.shape[1:]}, expected "
                               f"{(info.height, info.width, 3)}")
        times = reader.get_frame_timestamp(chunk)[:, 0]
        for i, t, data in zip(chunk, times, batch):
            yield Frame(i, float(t), data)


_DECODERS: dict[str, Callable[[str, VideoInfo, list[int] | None, str], Iterator[Frame]]] = {
    "pyav": _pyav_frames, "decord": _decord_frames}

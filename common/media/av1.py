"""The base quantiser index of an AV1 stream's first keyframe, read from its sequence and frame headers.

dav1d, FFmpeg's AV1 decoder here, exports no encoder parameters, so ``base_q_idx`` (0-255; AV1 Bitstream and
Decoding Process Specification, 5.9.12) of a stream's first frame is read here when that frame is a key frame.
Only the syntax that precedes it is parsed: the sequence header (5.5) and the uncompressed frame header (5.9.2) up
to ``quantization_params``, the frame size and tile layout included (5.9.5-5.9.6, 5.9.15). Segment and
block-level quantiser deltas live later in the header and in the tile data and are not read.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from common.media.bitreader import BitReader

_SEQUENCE_HEADER, _FRAME_HEADER, _FRAME = 1, 3, 6
_KEY_FRAME = 0
_SELECT = 2  # seq_force_screen_content_tools / seq_force_integer_mv: chosen per frame
_MAX_TILE_WIDTH, _MAX_TILE_AREA, _MAX_TILE_COLS, _MAX_TILE_ROWS = 4096, 4096 * 2304, 64, 64
_FRAME_HEADER_BYTES = 512  # more than a key frame's header takes before base_q_idx; the tile data is not read


def _uvlc(r: BitReader) -> int:
    zeros = 0
    while not r.u(1):
        zeros += 1
    return (1 << 32) - 1 if zeros >= 32 else r.u(zeros) + (1 << zeros) - 1


def _ns(r: BitReader, n: int) -> int:
    """A non-symmetric unsigned value below ``n`` (4.10.7)."""
    w = n.bit_length()
    m = (1 << w) - n
    v = r.u(w - 1)
    return v if v < m else (v << 1) - m + r.u(1)


def _tile_log2(block: int, target: int) -> int:
    k = 0
    while (block << k) < target:
        k += 1
    return k


@dataclass(frozen=True)
class _Sequence:
    reduced: bool  # reduced_still_picture_header
    decoder_model: bool  # decoder_model_info_present_flag
    equal_picture_interval: bool
    presentation_time_bits: int
    removal_time_bits: int
    operating_points: tuple[tuple[int, bool], ...]  # (operating_point_idc, decoder_model_present_for_this_op)
    width_bits: int
    height_bits: int
    max_width: int
    max_height: int
    frame_id_bits: int  # 0: no frame ids
    sb128: bool
    screen_content_tools: int
    integer_mv: int
    order_hint_bits: int
    superres: bool


def _parse_sequence(r: BitReader) -> _Sequence:
    r.u(3)  # seq_profile
    r.u(1)  # still_picture
    reduced = bool(r.u(1))
    decoder_model = equal_interval = False
    delay_bits = presentation_bits = removal_bits = 0
    points: list[tuple[int, bool]] = []
    if reduced:
        r.u(5)  # seq_level_idx[0]
        points.append((0, False))
    else:
        if r.u(1):  # timing_info_present_flag
            r.u(32), r.u(32)  # num_units_in_display_tick, time_scale
            equal_interval = bool(r.u(1))
            if equal_interval:
                _uvlc(r)
            decoder_model = bool(r.u(1))
            if decoder_model:
                delay_bits = r.u(5) + 1
                r.u(32)  # num_units_in_decoding_tick
                removal_bits, presentation_bits = r.u(5) + 1, r.u(5) + 1
        display_delay = r.u(1)
        for _ in range(r.u(5) + 1):
            idc = r.u(12)
            if r.u(5) > 7:  # seq_level_idx, then seq_tier
                r.u(1)
            present = decoder_model and bool(r.u(1))
            if present:
                r.u(delay_bits), r.u(delay_bits), r.u(1)  # decoder and encoder buffer delays, low_delay_mode_flag
            if display_delay and r.u(1):
                r.u(4)
            points.append((idc, present))
    width_bits, height_bits = r.u(4) + 1, r.u(4) + 1
    max_width, max_height = r.u(width_bits) + 1, r.u(height_bits) + 1
    frame_id_bits = 0
    if not reduced and r.u(1):  # frame_id_numbers_present_flag
        delta = r.u(4) + 2
        frame_id_bits = r.u(3) + 1 + delta
    sb128 = bool(r.u(1))
    r.u(2)  # enable_filter_intra, enable_intra_edge_filter
    tools = mv = _SELECT
    order_hint_bits = 0
    if not reduced:
        r.u(4)  # interintra compound, masked compound, warped motion, dual filter
        order_hint = r.u(1)
        if order_hint:
            r.u(2)  # enable_jnt_comp, enable_ref_frame_mvs
        tools = _SELECT if r.u(1) else r.u(1)
        if tools:
            mv = _SELECT if r.u(1) else r.u(1)
        if order_hint:
            order_hint_bits = r.u(3) + 1
    return _Sequence(reduced, decoder_model, equal_interval, presentation_bits, removal_bits, tuple(points),
                     width_bits, height_bits, max_width, max_height, frame_id_bits, sb128, tools, mv,
                     order_hint_bits, bool(r.u(1)))


def _skip_tile_info(r: BitReader, s: _Sequence, mi_cols: int, mi_rows: int) -> None:
    shift = 5 if s.sb128 else 4
    sb_cols, sb_rows = (mi_cols + (1 << shift) - 1) >> shift, (mi_rows + (1 << shift) - 1) >> shift
    sb_size = shift + 2
    max_width_sb, max_area_sb = _MAX_TILE_WIDTH >> sb_size, _MAX_TILE_AREA >> (2 * sb_size)
    min_cols_log2 = _tile_log2(max_width_sb, sb_cols)
    max_cols_log2 = _tile_log2(1, min(sb_cols, _MAX_TILE_COLS))
    max_rows_log2 = _tile_log2(1, min(sb_rows, _MAX_TILE_ROWS))
    min_log2 = max(min_cols_log2, _tile_log2(max_area_sb, sb_rows * sb_cols))
    if r.u(1):  # uniform_tile_spacing_flag
        cols_log2 = min_cols_log2
        while cols_log2 < max_cols_log2 and r.u(1):
            cols_log2 += 1
        rows_log2 = max(min_log2 - cols_log2, 0)
        while rows_log2 < max_rows_log2 and r.u(1):
            rows_log2 += 1
    else:
        start = widest = cols = 0
        while start < sb_cols:
            size = _ns(r, min(sb_cols - start, max_width_sb)) + 1
            widest, start, cols = max(widest, size), start + size, cols + 1
        area = (sb_rows * sb_cols) >> (min_log2 + 1) if min_log2 else sb_rows * sb_cols
        max_height_sb = max(area // widest, 1)
        start = rows = 0
        while start < sb_rows:
            start, rows = start + _ns(r, min(sb_rows - start, max_height_sb)) + 1, rows + 1
        cols_log2, rows_log2 = _tile_log2(1, cols), _tile_log2(1, rows)
    if cols_log2 or rows_log2:
        r.u(cols_log2 + rows_log2 + 2)  # context_update_tile_id, tile_size_bytes_minus_1


def _key_frame_q_index(r: BitReader, s: _Sequence, temporal_id: int, spatial_id: int) -> int | None:
    """``base_q_idx`` of a frame header, or None when it is not a key frame."""
    show = True
    if not s.reduced:
        if r.u(1) or r.u(2) != _KEY_FRAME:  # show_existing_frame, frame_type
            return None
        show = bool(r.u(1))
        if show and s.decoder_model and not s.equal_picture_interval:
            r.u(s.presentation_time_bits)
        if not show:
            r.u(1)  # showable_frame
    error_resilient = show or bool(r.u(1))
    disable_cdf_update = r.u(1)
    tools = r.u(1) if s.screen_content_tools == _SELECT else s.screen_content_tools
    if tools and s.integer_mv == _SELECT:
        r.u(1)  # force_integer_mv
    r.u(s.frame_id_bits)  # current_frame_id
    size_override = 0 if s.reduced else r.u(1)
    r.u(s.order_hint_bits)
    if s.decoder_model and r.u(1):  # buffer_removal_time_present_flag
        for idc, present in s.operating_points:
            if present and (idc == 0 or ((idc >> temporal_id) & 1 and (idc >> (spatial_id + 8)) & 1)):
                r.u(s.removal_time_bits)
    if not show and r.u(8) != 0xFF and error_resilient and s.order_hint_bits:  # refresh_frame_flags
        r.u(8 * s.order_hint_bits)  # ref_order_hint[]
    width, height = (r.u(s.width_bits) + 1, r.u(s.height_bits) + 1) if size_override else (s.max_width, s.max_height)
    denominator = 8
    if s.superres and r.u(1):  # use_superres
        denominator = r.u(3) + 9
    coded_width = (width * 8 + denominator // 2) // denominator
    if r.u(1):  # render_and_frame_size_different
        r.u(32)
    if tools and coded_width == width:
        r.u(1)  # allow_intrabc
    if not (s.reduced or disable_cdf_update):
        r.u(1)  # disable_frame_end_update_cdf
    _skip_tile_info(r, s, 2 * ((coded_width + 7) >> 3), 2 * ((height + 7) >> 3))
    return r.u(8)


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for k in range(8):
        if pos >= len(data):
            raise ValueError("truncated leb128 size")
        value |= (data[pos] & 0x7F) << (7 * k)
        pos += 1
        if not data[pos - 1] & 0x80:
            break
    return value, pos


def _obus(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """(obu_type, temporal_id, spatial_id, payload) of each OBU in low-overhead bitstream format (5.2)."""
    pos = 0
    while pos < len(data):
        header = data[pos]
        kind, extension, sized = (header >> 3) & 0xF, header & 4, header & 2
        pos += 1
        temporal = spatial = 0
        if extension:
            if pos >= len(data):
                raise ValueError("truncated OBU extension header")
            temporal, spatial = data[pos] >> 5, (data[pos] >> 3) & 3
            pos += 1
        size, pos = _leb128(data, pos) if sized else (len(data) - pos, pos)
        yield kind, temporal, spatial, data[pos:pos + size]
        pos += size


def key_frame_q_index(extradata: bytes, packet: bytes) -> int | None:
    """``base_q_idx`` of the first frame of an AV1 temporal unit (``packet``) when it is a key frame, with the
    sequence header from ``extradata`` (an av1C record, as MP4 and Matroska store it) or the packet itself. None
    when the packet's first frame is no key frame, no sequence header precedes it, or the syntax is malformed."""
    config = extradata[4:] if len(extradata) > 4 and extradata[0] == 0x81 else b""  # av1C marker and version 1
    sequence = None
    try:
        for kind, temporal, spatial, payload in itertools.chain(_obus(config), _obus(packet)):
            if kind == _SEQUENCE_HEADER:
                sequence = _parse_sequence(BitReader(payload))
            elif kind in (_FRAME_HEADER, _FRAME):
                if sequence is None:
                    return None
                return _key_frame_q_index(BitReader(payload[:_FRAME_HEADER_BYTES]), sequence, temporal, spatial)
    except (ValueError, IndexError):
        return None
    return None

"""The slice QP of an HEVC IDR picture, read from the bitstream's parameter sets and first slice header.

FFmpeg's HEVC decoder exports no encoder parameters, so the quantiser of an HEVC stream's first keyframe is read
here: ``SliceQpY = 26 + init_qp_minus26 + slice_qp_delta`` (ITU-T H.265, 7.4.3.3 and 7.4.7.1). Only the syntax
that precedes those two fields is parsed: the SPS up to ``sample_adaptive_offset_enabled_flag``, the PPS up to
``init_qp_minus26`` and the header of an IDR slice (other pictures need the reference picture sets; they give
None). Coding-unit QP deltas live in the entropy-coded slice data and are not read.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from common.media.bitreader import BitReader

_VPS, _SPS, _PPS = 32, 33, 34
_IDR = (19, 20)  # IDR_W_RADL, IDR_N_LP
_SLICE_HEADER_BYTES = 256  # more than an IDR slice header takes before slice_qp_delta; the slice data is not read


def _rbsp(nal: bytes) -> bytes:
    """The NAL unit's payload after its 2-byte header, with each 0x000003 emulation-prevention byte removed."""
    out, zeros = bytearray(), 0
    for b in nal[2:]:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _nal_type(nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F


def _skip_profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> None:
    r.u(88)  # general profile space, tier, profile, compatibility and constraint flags
    r.u(8)  # general_level_idc
    present = [(r.u(1), r.u(1)) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.u(2 * (8 - max_sub_layers_minus1))
    for profile, level in present:
        r.u(88 * profile + 8 * level)


def _skip_scaling_list_data(r: BitReader) -> None:
    for size_id in range(4):
        for _ in range(0, 6, 3 if size_id == 3 else 1):
            if not r.u(1):  # scaling_list_pred_mode_flag
                r.ue()
                continue
            if size_id > 1:
                r.se()
            for _ in range(min(64, 1 << (4 + (size_id << 1)))):
                r.se()


@dataclass(frozen=True)
class _Sps:
    separate_colour_plane: bool
    chroma_format_idc: int
    ctbs: int  # coding tree blocks per picture
    sao: bool


def _parse_sps(rbsp: bytes) -> tuple[int, _Sps]:
    r = BitReader(rbsp)
    r.u(4)
    max_sub_layers_minus1 = r.u(3)
    r.u(1)
    _skip_profile_tier_level(r, max_sub_layers_minus1)
    sps_id, chroma = r.ue(), r.ue()
    separate = bool(r.u(1)) if chroma == 3 else False
    width, height = r.ue(), r.ue()
    if r.u(1):  # conformance window
        for _ in range(4):
            r.ue()
    r.ue(), r.ue(), r.ue()  # bit depths, log2_max_pic_order_cnt_lsb_minus4
    ordering_all = r.u(1)
    for _ in range(0 if ordering_all else max_sub_layers_minus1, max_sub_layers_minus1 + 1):
        r.ue(), r.ue(), r.ue()
    log2_min_cb = r.ue() + 3
    log2_ctb = log2_min_cb + r.ue()
    r.ue(), r.ue(), r.ue(), r.ue()  # transform block sizes and hierarchy depths
    if r.u(1) and r.u(1):  # scaling lists enabled, and sent in the SPS
        _skip_scaling_list_data(r)
    r.u(1)  # amp_enabled_flag
    ctb = 1 << log2_ctb
    ctbs = -(-width // ctb) * -(-height // ctb)
    return sps_id, _Sps(separate, chroma, ctbs, bool(r.u(1)))


@dataclass(frozen=True)
class _Pps:
    sps_id: int
    dependent_slices: bool
    output_flag: bool
    extra_bits: int
    init_qp: int


def _parse_pps(rbsp: bytes) -> tuple[int, _Pps]:
    r = BitReader(rbsp)
    pps_id, sps_id = r.ue(), r.ue()
    dependent, output, extra = bool(r.u(1)), bool(r.u(1)), r.u(3)
    r.u(1), r.u(1)  # sign_data_hiding_enabled_flag, cabac_init_present_flag
    r.ue(), r.ue()  # default reference list sizes
    return pps_id, _Pps(sps_id, dependent, output, extra, 26 + r.se())


def _idr_slice_qp(nal: bytes, sps: dict[int, _Sps], pps: dict[int, _Pps]) -> int | None:
    r = BitReader(_rbsp(nal[:_SLICE_HEADER_BYTES]))
    first = r.u(1)
    r.u(1)  # no_output_of_prior_pics_flag (an IRAP picture)
    p = pps.get(r.ue())
    s = sps.get(p.sps_id) if p else None
    if p is None or s is None:
        return None
    if not first:
        if p.dependent_slices and r.u(1):
            return None  # a dependent slice segment carries no QP of its own
        r.u((s.ctbs - 1).bit_length())  # slice_segment_address: Ceil(Log2(PicSizeInCtbsY)) bits
    r.u(p.extra_bits)
    slice_type = r.ue()
    if p.output_flag:
        r.u(1)
    if s.separate_colour_plane:
        r.u(2)
    if s.sao:
        r.u(1)
        if not s.separate_colour_plane and s.chroma_format_idc != 0:
            r.u(1)
    if slice_type != 2:  # an IDR picture has I slices only
        return None
    return p.init_qp + r.se()


def _length_prefixed(data: bytes, size: int) -> Iterator[bytes]:
    pos = 0
    while pos + size <= len(data):
        n = int.from_bytes(data[pos:pos + size], "big")
        pos += size
        yield data[pos:pos + n]
        pos += n


def _annex_b(data: bytes) -> Iterator[bytes]:
    starts, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    for a, b in zip(starts, starts[1:] + [len(data) + 3]):
        yield data[a:b - 3].rstrip(b"\x00")


def _nals(data: bytes, length_size: int | None) -> Iterator[bytes]:
    return _annex_b(data) if length_size is None else _length_prefixed(data, length_size)


def _hvcc_nals(extradata: bytes) -> tuple[list[bytes], int]:
    """The parameter-set NAL units of an ISO/IEC 14496-15 hvcC record, and its NAL length size."""
    length_size, pos, nals = (extradata[21] & 3) + 1, 23, []
    for _ in range(extradata[22]):
        count = int.from_bytes(extradata[pos + 1:pos + 3], "big")
        pos += 3
        for _ in range(count):
            n = int.from_bytes(extradata[pos:pos + 2], "big")
            nals.append(extradata[pos + 2:pos + 2 + n])
            pos += 2 + n
    return nals, length_size


def idr_slice_qp(extradata: bytes, packet: bytes) -> int | None:
    """The QP of the first slice of an HEVC access unit (``packet``) that is an IDR picture, with the parameter sets
    from ``extradata`` (an hvcC record, as MP4 and Matroska store it, or Annex B start codes) or the packet
    itself. None when the packet holds no IDR slice or the syntax is malformed."""
    if len(extradata) > 22 and extradata[0] == 1:
        params, length_size = _hvcc_nals(extradata)
    else:
        params, length_size = list(_annex_b(extradata)), None
    sps: dict[int, _Sps] = {}
    pps: dict[int, _Pps] = {}
    try:
        for nal in [*params, *_nals(packet, length_size)]:
            if len(nal) < 3:
                continue
            kind = _nal_type(nal)
            if kind == _SPS:
                key, value = _parse_sps(_rbsp(nal))
                sps[key] = value
            elif kind == _PPS:
                key, parsed = _parse_pps(_rbsp(nal))
                pps[key] = parsed
            elif kind in _IDR:
                return _idr_slice_qp(nal, sps, pps)
            elif kind < _VPS:
                return None  # a slice of another picture type comes first
    except (ValueError, IndexError):
        return None
    return None

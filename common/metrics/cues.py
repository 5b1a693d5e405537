"""Distortion cues: a few classic no-reference measures of a frame's two views, batched in torch.

Deep features of a few dozen training contents learn those contents as much as their distortions; these cues
are normalised by the content itself, so they carry across contents. Each compares the frame with a
pseudo-reference made from it (Min et al., "Blind quality assessment based on pseudo-reference image", IEEE TMM
2018): an already blurred frame changes little when blurred again (Crete et al., "The blur effect", SPIE 2007).
Noise is measured by Immerkaer's Laplacian-difference operator ("Fast noise variance estimation", CVIU 1996);
block coding leaves gradient peaks at one phase of 8 pixels. The whole-frame view adds exposure and colour
statistics (Hasler and Suesstrunk's colourfulness, SPIE 2003).

Input: fragments and whole-frame views, (B, 3, S, S) floats in 0-1, the fragments a grid of ``patch``-pixel
mini-patches (gradients that cross a patch seam are left out). Output: (B, :data:`N_CUES`).

:func:`bitstream_cues` reads what the encoder spent (:class:`common.media.BitstreamStats`), as hybrid
bitstream/pixel models do (ITU-T P.1204.3; Rao et al., "AVQBits", 2022): at a given quantiser bits per pixel
rise with the content's detail and motion, so with the pixel cues they tell a hard content coded well from an
easy one coded coarsely. Where it can be read (:class:`common.media.Quantiser`: H.264, HEVC, VP9 and AV1), the
first keyframe's quantiser says how coarsely the encoder quantised directly, as P.1204.3 reads QP.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from common.media import BitstreamStats, Quantiser
from common.reduce import mean_std

BLUR_SIGMAS = (0.7, 1.5)  # pseudo-references: the fragments blurred again
BLOCK = 8  # the coding block whose seams blockiness looks for
N_FRAGMENT_CUES = 3 * len(BLUR_SIGMAS) + 3 + 2  # the first cues, read from the fragments: blur, detail, noise, blocks
N_CUES = N_FRAGMENT_CUES + 8  # then the whole view's exposure and colour
_LUMA = (0.299, 0.587, 0.114)
BITSTREAM_CODECS = ("h264", "hevc", "vp9", "av1")  # FFmpeg's codec names
# the largest quantiser of each codec whose keyframe quantiser is read
QUANTISER_RANGES = {"h264": 51.0, "hevc": 51.0, "vp9": 255.0, "av1": 255.0}
N_BITSTREAM = 1 + len(BITSTREAM_CODECS) + 4 + len(QUANTISER_RANGES) + 1
_REF_PIXELS = 640 * 360
# At one quantiser, bits per pixel fall with the frame size: about as pixels^-0.35, the median slope of log2 bits per
# pixel over log2 pixels along the resolution ladders (one CRF) of the pgc set's training contents (quartiles 0.30
# and 0.48; ``python -m suites.video.report`` measures it). Bits per pixel are scaled by pixels^0.35 to their 640x360
# equivalent, so larger frames (the sets' clips are 360 lines high) fall inside the range the models were trained on.
BPP_SIZE_EXPONENT = 0.35


def _luma(x: Tensor) -> Tensor:
    r, g, b = _LUMA
    return (x[:, 0:1] * r).add_(x[:, 1:2], alpha=g).add_(x[:, 2:3], alpha=b)


def _laplacian_and_noise(g: Tensor) -> tuple[Tensor, Tensor]:
    """Mean absolute response of (B, 1, H, W) to the 3x3 Laplacian and to Immerkaer's noise operator (the outer
    product of two second differences), valid positions only: (B,) each. As shifted sums: the same values as
    ``conv2d`` within float rounding, at a fifth of its time on the CPU for one channel."""
    c = g[..., 1:-1, 1:-1]
    lap = g[..., :-2, 1:-1] + g[..., 2:, 1:-1] + g[..., 1:-1, :-2] + g[..., 1:-1, 2:] - 4 * c
    dx = g[..., :, :-2] - 2 * g[..., :, 1:-1] + g[..., :, 2:]
    noise = dx[..., :-2, :] - 2 * dx[..., 1:-1, :] + dx[..., 2:, :]
    return lap.abs().mean((1, 2, 3)), noise.abs().mean((1, 2, 3))


def _blur(g: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, 1, H, W), reflected at the borders; as shifted in-place sums, which on the CPU
    are several times faster than ``conv2d`` for these few taps and give the same values."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=g.dtype, device=g.device)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    taps = (k / k.sum()).tolist()
    h, w = g.shape[-2:]
    p = F.pad(g, (r, r, r, r), mode="reflect")
    rows = p[..., :w] * taps[0]
    for i in range(1, 2 * r + 1):
        rows.add_(p[..., i:i + w], alpha=taps[i])
    out = rows[..., :h, :] * taps[0]
    for i in range(1, 2 * r + 1):
        out.add_(rows[..., i:i + h, :], alpha=taps[i])
    return out


def _quantiles(x: Tensor, qs: tuple[float, ...]) -> Tensor:
    """``torch.quantile(x, qs, dim=1)`` (linear interpolation), the same values, from a partial selection (``topk``)
    of the lower or upper end rather than a full sort: (len(qs), B)."""
    n = x.shape[1]
    pos = torch.tensor(qs, dtype=x.dtype, device=x.device) * (n - 1)
    out = []
    for q, p, k in zip(qs, pos, pos.floor().long().tolist()):
        hi = min(k + 1, n - 1)
        if q <= 0.5:
            v = x.topk(hi + 1, dim=1, largest=False).values
            below, above = v[:, k], v[:, hi]
        else:
            v = x.topk(n - k, dim=1).values  # descending: sorted index j sits at n - 1 - j
            below, above = v[:, n - 1 - k], v[:, n - 1 - hi]
        out.append(torch.lerp(below, above, p - k))
    return torch.stack(out)


def _patch_gradient_energy(g: Tensor, patch: int) -> Tensor:
    """Mean squared gradient inside each patch of (B, 1, S, S): (B, (S / patch)^2), seams left out."""
    b, _, s, _ = g.shape
    n = s // patch
    p = g.reshape(b, n, patch, n, patch)
    gx = p[:, :, :-1, :, 1:] - p[:, :, :-1, :, :-1]
    gy = p[:, :, 1:, :, :-1] - p[:, :, :-1, :, :-1]
    return (gx ** 2 + gy ** 2).mean((2, 4)).reshape(b, n * n)


def _blockiness(g: Tensor, patch: int) -> Tensor:
    """Peak-to-mean ratio of the column-gradient profile over the BLOCK phases, per patch, averaged: (B,)."""
    b, _, s, _ = g.shape
    n = s // patch
    d = g.reshape(b, n, patch, n, patch).diff(dim=4).abs().mean(2)  # (B, n, n, patch - 1)
    usable = (patch - 1) // BLOCK * BLOCK
    profile = d[..., :usable].reshape(b, n, n, -1, BLOCK).mean(3)
    return (profile.amax(-1) / profile.mean(-1).clamp_min(1e-6)).mean((1, 2))


def distortion_cues(fragments: Tensor, whole: Tensor, patch: int = 32, exposure: bool = True) -> Tensor:
    """The cues of each frame, (B, N_CUES): for each BLUR_SIGMAS, the mean, 20th and 80th percentile over patches
    of the gradient energy kept when the fragments are blurred again; the log gradient energy, log noise
    level and log mean absolute Laplacian of the fragments; their horizontal and vertical blockiness; then
    the whole view's mean, spread, dark and bright shares, 5th and 95th percentile luma, saturation and
    colourfulness. ``exposure=False``: the fragment cues only, (B, N_FRAGMENT_CUES)."""
    if fragments.ndim != 4 or fragments.shape[1] != 3 or fragments.shape != whole.shape:
        raise ValueError(f"distortion_cues wants two (B, 3, S, S) views of one shape, got {tuple(fragments.shape)} "
                         f"and {tuple(whole.shape)}")
    if fragments.shape[-1] % patch or fragments.shape[-2] != fragments.shape[-1]:
        raise ValueError(f"distortion_cues wants square views made of {patch}-pixel patches, got "
                         f"{tuple(fragments.shape[-2:])}")
    fragments, whole = fragments.float().contiguous(), whole.float().contiguous()  # channels-last input: 40% slower
    g = _luma(fragments)
    e0 = _patch_gradient_energy(g, patch)
    cues = []
    for sigma in BLUR_SIGMAS:
        kept = _patch_gradient_energy(_blur(g, sigma), patch) / (e0 + 1e-6)
        cues += [kept.mean(1), *_quantiles(kept, (0.2, 0.8))]
    lap, noise = _laplacian_and_noise(g)
    cues += [torch.log(e0.mean(1) + 1e-6), torch.log(noise + 1e-5), torch.log(lap + 1e-6),
             _blockiness(g, patch), _blockiness(g.transpose(2, 3), patch)]
    if not exposure:
        return torch.stack(cues, 1)
    y = _luma(whole).flatten(1)
    hi, lo = whole.amax(1), whole.amin(1)
    rg, yb = whole[:, 0] - whole[:, 1], (whole[:, 0] + whole[:, 1]) / 2 - whole[:, 2]
    spread = [mean_std(c.flatten(1), (1,), 1)[1] for c in (y, rg, yb)]
    cues += [y.mean(1), spread[0], (y < 0.02).float().mean(1), (y > 0.98).float().mean(1),
             *_quantiles(y, (0.05, 0.95)), ((hi - lo) / (hi + 1e-3)).flatten(1).mean(1), torch.hypot(*spread[1:])]
    return torch.stack(cues, 1)


def bitstream_cues(stats: BitstreamStats | None, quantiser: Quantiser | None = None) -> Tensor:
    """(N_BITSTREAM,) float32: 1 (known), the codec family one-hot (H.264, HEVC, VP9, AV1), log2 bits per pixel over
    all frames, the keyframes and the other frames at their 640x360 equivalent (see BPP_SIZE_EXPONENT), log2 of the
    coded pixels over 640x360, capped at 0 (a frame below that size is a low rung shown scaled up), then the
    keyframe quantiser over its codec's range in that codec's column (H.264, HEVC, VP9, AV1) and 1 where it is known.
    All zeros where the stream is unknown: ``None`` (images, raw video) or another codec, whose bit budgets differ;
    the quantiser part stays zero where none was read or it belongs to another codec."""
    out = torch.zeros(N_BITSTREAM)
    if stats is None or stats.codec not in BITSTREAM_CODECS:
        return out
    out[0] = 1.0
    out[1 + BITSTREAM_CODECS.index(stats.codec)] = 1.0
    size = stats.width * stats.height / _REF_PIXELS
    bpp = [stats.bits_per_pixel(w) * size ** BPP_SIZE_EXPONENT for w in ("all", "key", "inter")]
    first = 1 + len(BITSTREAM_CODECS)
    out[first:first + 4] = torch.tensor([*bpp, min(size, 1.0)]).clamp_min(1e-6).log2()
    if quantiser is not None and quantiser.codec == stats.codec and quantiser.codec in QUANTISER_RANGES:
        codecs = list(QUANTISER_RANGES)
        out[first + 4 + codecs.index(quantiser.codec)] = quantiser.qp / QUANTISER_RANGES[quantiser.codec]
        out[-1] = 1.0
    return out

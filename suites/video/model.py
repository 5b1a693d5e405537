"""Video quality models in the CenseoQoE manner: one global feature per frame from the shared backbone, an MLP head
per frame, temporal pooling of the frame scores (Zhang et al., "CenseoQoE: a framework for video quality
assessment", 2021). An image is a one-frame video.

Each frame gives the backbone two square views, 160x160 by default:

- **fragments**: a 5x5 grid of native-resolution 32x32 mini-patches stitched together (Wu et al., "FAST-VQA",
  ECCV 2022), so compression, blur and noise keep their scale whatever the frame size, at a fixed cost;
- **whole frame**: the frame scaled down to the same size, for exposure, colour and composition.

The view size is set by the speed goal (DESIGN section 7): at 160 pixels the network costs less than decoding
the sampled 1080p frames on 2 CPU cores. A network may choose a coarser grid (``ugc`` reads 4x4 patches, 128x128
views, about two thirds of the cost). The patches sit at the cell centres, or (``positions="frame"``, ``ugc``) at
random positions in their cells drawn afresh for each scored frame from a seed fixed by the frame's place in the
file: a clip's frames then cover many more parts of the picture at no cost, scores stay reproducible, and the
versions of one source are read at the same positions.

A model with ``bitstream`` also reads what the encoder spent on the file (codec, bits per pixel of keyframes and
other frames, coded size, and for H.264, HEVC, VP9 and AV1 the first keyframe's quantiser;
:func:`common.metrics.cues.bitstream_cues`), as hybrid models do: it lets a compression model tell a detailed
content coded well from a plain one coded coarsely. Images, raw video and other codecs get the "unknown" input,
which training also shows it (a fifth of the time).

Frames shorter than 360 lines are first scaled up to 360, as a player would show them: a low rung of a
resolution ladder looks soft, which is what VMAF (scoring at display size) and viewers see. The full-reference
model gives the head the distorted frame's features and their difference from the reference's (the distorted
frame is scaled to the reference's size first, as VMAF does). Videos are sampled at the keyframes nearest to
8 evenly spread frames, which only keyframe decoding needs (DESIGN section 7).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from common.errors import WeightsError
from common.media import UniformKeyframes, bitstream_stats, fragments, keyframe_quantiser, media_kind, to_uint8
from common.metrics import fr
from common.metrics.cues import N_BITSTREAM, N_CUES, N_FRAGMENT_CUES, bitstream_cues, distortion_cues
from common.model import Prepared
from common.quality import HeadEnsemble, QualityModel, QualityNet, mlp
from common.registry import ModelSpec, register

GRID, PATCH = 5, 32  # fragments: GRID x GRID patches of PATCH pixels, by default (a network may choose its grid)
SIDE = GRID * PATCH  # both views are SIDE x SIDE by default: grid * PATCH on a side in general
DISPLAY_LINES = 360  # shorter frames are shown (scaled up) at this height first
FRAMES = 8  # frames per video: the keyframes nearest to FRAMES evenly spread ones
POSITIONS = ("centre", "frame")  # where the fragments' patches sit in their cells: see VideoNet
FRAME_SEED = 1_000_003  # seeds of the per-frame patch positions: FRAME_SEED + the frame's place in the file


def _resize(img: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    """An HxWx3 uint8 image at ``size`` = (w, h) through Pillow. Shrinking starts with a box reduction by the
    largest whole factors (the antialiasing filter, at a fifth of the time of a full resample of 1080p)."""
    im = Image.fromarray(img)
    fx, fy = im.width // size[0], im.height // size[1]
    if fx > 1 or fy > 1:
        im = im.reduce((max(1, fx), max(1, fy)))
    return np.array(im.resize(size, resample))  # writable, for torch.from_numpy


def display_frame(frame: np.ndarray) -> np.ndarray:
    """The frame as 8-bit RGB, scaled up (bicubic) so its shorter side is at least DISPLAY_LINES."""
    img = to_uint8(frame)
    h, w = img.shape[:2]
    if min(h, w) >= DISPLAY_LINES:
        return img
    s = DISPLAY_LINES / min(h, w)
    return _resize(img, (max(DISPLAY_LINES, round(w * s)), max(DISPLAY_LINES, round(h * s))), Image.BICUBIC)


def check_grid(grid: int) -> None:
    """A ValueError unless ``grid`` patches per side fit in a frame of DISPLAY_LINES lines."""
    if not isinstance(grid, int) or not 1 <= grid <= DISPLAY_LINES // PATCH:
        raise ValueError(f"grid must be a whole number of {PATCH}-pixel patches from 1 to {DISPLAY_LINES // PATCH}, "
                         f"got {grid!r}")


WHOLE_VIEWS = ("area", "sampled", "none")  # how the whole-frame view is made: see frame_views_uint8


def _sampled(img: np.ndarray, side: int) -> np.ndarray:
    """The frame at side x side from the pixels nearest the centres of a side x side grid of cells (aliased): a
    fortieth of the cost of :func:`_resize` on 1080p here, and about the same exposure and colour statistics."""
    h, w = img.shape[:2]
    cells = 2 * np.arange(side) + 1
    return img.take(cells * h // (2 * side), 0).take(cells * w // (2 * side), 1)


def frame_views_uint8(frame: np.ndarray, generator: torch.Generator | None = None, whole: str = "area",
                      grid: int = GRID) -> Tensor:
    """(2, 3, S, S) uint8 with S = grid * PATCH: fragments (grid x grid patches, cell-centred, or at random cell
    positions with a generator) and the whole frame (what training caches). ``whole`` says how the second view is
    made (:attr:`VideoNet.whole_view`): ``"area"`` scales the frame down with antialiasing, for a backbone to read;
    ``"sampled"`` from a sparse pixel grid, for the exposure and colour cues alone; ``"none"`` leaves it black, for
    networks that never read it. Scaling the full frame down with antialiasing is most of the cost of these views."""
    if whole not in WHOLE_VIEWS:
        raise ValueError(f"whole must be one of {', '.join(WHOLE_VIEWS)}, got {whole!r}")
    check_grid(grid)
    img = np.require(display_frame(frame), requirements="W")  # decoded images can be read-only; torch wants writable
    frag = fragments(torch.from_numpy(img).permute(2, 0, 1), grid, PATCH, generator)
    if whole == "none":
        return torch.stack([frag, torch.zeros_like(frag)])
    side = grid * PATCH
    small = _resize(img, (side, side), Image.BILINEAR) if whole == "area" else _sampled(img, side)
    return torch.stack([frag, torch.from_numpy(small).permute(2, 0, 1)])


def frame_generator(positions: str, ordinal: int) -> torch.Generator | None:
    """The generator of the patch positions of a file's ``ordinal``-th scored frame (from 0) under ``positions``
    (:class:`VideoNet`): None (cell centres) for ``"centre"``. The same in scoring and in the training cache's
    scoring views."""
    return torch.Generator().manual_seed(FRAME_SEED + ordinal) if positions == "frame" else None


def frame_views(frame: np.ndarray, generator: torch.Generator | None = None, whole: str = "area",
                grid: int = GRID) -> Tensor:
    """:func:`frame_views_uint8` in [0, 1]: only the sampled pixels and the downscaled frame become float."""
    return frame_views_uint8(frame, generator, whole, grid).float().div_(255)


def match_size(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The distorted frame at the reference's (h, w) size (bicubic), as VMAF compares at display size."""
    img = to_uint8(frame)
    return img if img.shape[:2] == size else _resize(img, (size[1], size[0]), Image.BICUBIC)


def stage_distances(dist: list[Tensor], ref: list[Tensor]) -> Tensor:
    """Per-channel distances of aligned feature maps, as LPIPS computes them (Zhang et al., "The unreasonable
    effectiveness of deep features as a perceptual metric", CVPR 2018): each location's channel vector scaled to
    unit length, squared differences averaged over the locations. (N, sum of channels) from each stage's maps."""
    out = []
    for d, r in zip(dist, ref):
        d, r = d.float(), r.float()
        d = d / (d.pow(2).sum(1, keepdim=True).sqrt() + 1e-6)
        r = r / (r.pow(2).sum(1, keepdim=True).sqrt() + 1e-6)
        out.append((d - r).pow(2).mean((2, 3)))
    return torch.cat(out, 1)


LUMA = (0.299, 0.587, 0.114)  # BT.601, as the classic metrics read RGB images
VIEW_METRICS = ("psnr", "ssim", "vif", "gmsd", "motion")


def view_metrics(dist: Tensor, ref: Tensor, prev: Tensor) -> Tensor:
    """(N, 3, S, S) views in [0, 1] of the distorted frame, its reference and the reference frame before it ->
    (N, 5): PSNR / 100, SSIM, VIF and GMSD of the distorted against the reference luma, and the reference's motion
    ``log(1 + mean |ref - prev|)`` on the 0-255 scale (the temporal masking VMAF reads from its motion feature;
    0 where there is no previous frame). The fragments of the three sit at the same positions, so each pair aligns."""
    w = torch.tensor(LUMA, device=dist.device).view(1, 3, 1, 1) * 255
    with torch.autocast(dist.device.type, enabled=False):
        d, r, p = ((v.float() * w).sum(1, keepdim=True).clamp_(0, 255) for v in (dist, ref, prev))
        return torch.stack([fr.psnr(d, r) / 100, fr.ssim(d, r), fr.vif(d, r), fr.gmsd(d, r),
                            torch.log1p((r - p).abs().mean((1, 2, 3)))], 1)


def file_bitstream_cues(media: str | Path | np.ndarray) -> Tensor:
    """The bitstream cues of a media file (:func:`common.metrics.cues.bitstream_cues`): unknown for arrays, images
    and raw video. For H.264, HEVC, VP9 and AV1 they include the first keyframe's quantiser, which costs decoding
    that frame (H.264, VP9; HEVC's and AV1's are read while demuxing)."""
    if isinstance(media, np.ndarray) or media_kind(media) != "video":
        return bitstream_cues(None)
    stats = bitstream_stats(media)
    return bitstream_cues(stats, None if stats is None else keyframe_quantiser(media))


class VideoNet(QualityNet):
    """Per-frame quality from the pooled backbone features of each view (views x features), BatchNorm and the MLP
    head. Full-reference: the distorted views' pooled features and, per view, the LPIPS-style distances of the
    distorted and reference feature maps (the fragments of both sides sit at the same positions, so their maps
    align); with ``metrics``, also the classic metrics and the motion of each view (:func:`view_metrics`), as VMAF
    fuses elementary metrics and motion. ``content=False`` leaves the distorted views' pooled features out: an FR
    head then reads only how the two sides differ (with them, a fit on the pgc set learnt its training contents;
    see docs/video.md), an NR head only its cues. ``cues`` (no-reference) adds the classic distortion cues of each
    frame (:func:`common.metrics.cues.distortion_cues`), which carry across contents better than deep features do;
    ``exposure=False`` keeps only the fragment cues (blur, detail, noise, blocks), leaving out the whole view's
    exposure and colour, which codec ladders do not change. ``bitstream`` (no-reference) adds the file's bitstream
    cues. ``deep_views=1`` (no-reference): the backbone reads the fragments only, and the whole view reaches the head
    through the exposure and colour cues alone, which halves the network's cost. ``grid``: the fragments' patches per
    side (:func:`frame_views_uint8`), which sets the views' side and the network's cost. ``positions`` (no-reference):
    ``"centre"`` takes each cell's centre patch on every frame; ``"frame"`` a random position in each cell, drawn
    for each scored frame from the seed :func:`frame_generator` gives its place in the file, which in validation
    raised every figure of the ugc head (docs/video.md). ``heads`` > 1: that many heads on the one backbone, scoring
    as their mean (:class:`common.quality.HeadEnsemble`, made by :meth:`ensemble`). Input (B, V, 3, H, W): the V
    distorted views, then (FR) the V reference views, then (``metrics``) the V views of the reference frame before;
    with ``bitstream``, the pair (views, (B, N_BITSTREAM) bitstream cues)."""

    def __init__(self, width: float = 0.375, blocks: tuple[int, int, int, int] = (2, 2, 2, 2), hidden: int = 256,
                 views: int = 2, full_reference: bool = False, metrics: bool = False, content: bool = True,
                 cues: bool = False, bitstream: bool = False, exposure: bool = True,
                 deep_views: int | None = None, grid: int = GRID, positions: str = "centre", heads: int = 1) -> None:
        if metrics and not full_reference:
            raise ValueError("view metrics compare with a reference: they need full_reference=True")
        if not (content or full_reference or cues):
            raise ValueError("a no-reference network reads the content or its distortion cues: content=False needs "
                             "full_reference=True or cues=True")
        if cues and (full_reference or views != 2):
            raise ValueError("distortion cues are read from a no-reference frame's fragments and whole view")
        if bitstream and full_reference:
            raise ValueError("bitstream cues are for no-reference networks")
        if not (exposure or cues):
            raise ValueError("exposure=False chooses among the distortion cues: it needs cues=True")
        check_grid(grid)
        if heads < 1:
            raise ValueError(f"heads must be 1 or more, got {heads}")
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")
        if positions != "centre" and full_reference:
            raise ValueError("a full-reference network reads both sides at the cell centres: positions='centre'")
        deep_views = views if deep_views is None else deep_views
        if deep_views != views and (full_reference or not content or deep_views != 1):
            raise ValueError(f"deep_views={deep_views}: a no-reference network with content features reads all "
                             f"{views} views or the fragments alone (deep_views=1)")
        units = 2 * content * deep_views + full_reference * views  # pooled mean/std (2 half-units), LPIPS distances
        with warnings.catch_warnings():
            if not units:  # no pooled features (cues only): the base head, replaced below, is empty
                warnings.filterwarnings("ignore", "Initializing zero-element tensors")
            super().__init__(width, blocks, hidden, inputs=units, input_unit=0.5)
        self.views, self.full_reference, self.metrics, self.content = views, full_reference, metrics, content
        self.cues, self.bitstream, self.exposure, self.deep_views = cues, bitstream, exposure, deep_views
        self.grid, self.positions, self.heads = grid, positions, heads
        d = self.norm.num_features
        if metrics or cues or bitstream:
            n_cues = N_CUES if exposure else N_FRAGMENT_CUES
            d += views * len(VIEW_METRICS) * metrics + n_cues * cues + N_BITSTREAM * bitstream
            self.norm, self.quality = nn.BatchNorm1d(d), mlp(d, hidden, 1)
        if heads > 1:  # the ensemble normalises its input per head
            self.norm, self.quality = nn.Identity(), HeadEnsemble(d, hidden, heads)

    @property
    def reads_backbone(self) -> bool:
        return self.content or self.full_reference

    @property
    def whole_view(self) -> str:
        """How the whole-frame view (the second) must be made (see :func:`frame_views_uint8`): ``"area"`` where the
        backbone reads it, ``"sampled"`` where only the exposure and colour cues do, ``"none"`` where it never reaches
        the output."""
        if self.full_reference or (self.content and self.deep_views == self.views):
            return "area"
        return "sampled" if self.cues and self.exposure else "none"

    @property
    def input_views(self) -> int:
        """Views per frame the network reads: distorted, then (FR) reference, then (metrics) previous reference."""
        return self.views * (1 + self.full_reference + self.metrics)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "views": self.views, "full_reference": self.full_reference,
                "metrics": self.metrics, "content": self.content, "cues": self.cues, "bitstream": self.bitstream,
                "exposure": self.exposure, "deep_views": self.deep_views, "grid": self.grid,
                "positions": self.positions, "heads": self.heads}

    @classmethod
    def ensemble(cls, nets: list[VideoNet]) -> VideoNet:
        """One network that scores as the mean of ``nets``: one-head networks of one config on one backbone (the
        frozen backbone of heads trained from several seeds)."""
        cfg = nets[0].config()
        if len(nets) < 2 or cfg["heads"] != 1 or any(n.config() != cfg for n in nets):
            raise ValueError("an ensemble joins two or more one-head networks of one config")
        backbone = nets[0].backbone.state_dict()
        others = [n.backbone.state_dict() for n in nets[1:]]
        if any(not torch.equal(v, other[k]) for other in others for k, v in backbone.items()):
            raise ValueError("the heads of an ensemble share one backbone: these networks' backbones differ")
        net = cls.build({**cfg, "heads": len(nets)})
        net.backbone.load_state_dict(backbone)
        net.quality.load_heads([(n.norm, n.quality) for n in nets])
        return net

    @classmethod
    def build(cls, cfg: dict[str, Any]) -> VideoNet:
        net = super().build(cfg)
        return cls(net.backbone.width, net.backbone.blocks, net.hidden, int(cfg.get("views", 2)),
                   bool(cfg.get("full_reference", False)), bool(cfg.get("metrics", False)),
                   bool(cfg.get("content", True)), bool(cfg.get("cues", False)), bool(cfg.get("bitstream", False)),
                   bool(cfg.get("exposure", True)), cfg.get("deep_views"), int(cfg.get("grid", GRID)),
                   str(cfg.get("positions", "centre")), int(cfg.get("heads", 1)))

    def maps(self, x: Tensor) -> list[Tensor]:
        """(B, V, 3, H, W) views -> the backbone's stage maps, each (B * V, C, h, w)."""
        return self.backbone(x.flatten(0, 1))

    def head_input(self, dist: list[Tensor], ref: list[Tensor] | None = None, views: int | None = None) -> Tensor:
        """Stage maps of the distorted views (and FR: of the aligned reference views), each (B * V, C, h, w) ->
        the head's input before BatchNorm, (B, V * features): pooled statistics (with ``content``), then (FR) the
        distances."""
        v = views or self.views
        parts = [self.backbone.pool(dist)] if self.content else []
        if self.full_reference:
            if ref is None:
                raise ValueError("a full-reference network needs the reference views' feature maps")
            parts.append(stage_distances(dist, ref))
        f = torch.cat(parts, 1)
        return f.view(-1, v * f.shape[1])

    def frame_features(self, x: Tensor) -> Tensor:
        """(B, V', 3, H, W) views (see the class) -> the head's input before BatchNorm."""
        if x.ndim != 5 or x.shape[1] != self.input_views:
            raise ValueError(f"expected (B, {self.input_views}, 3, H, W) views, got {tuple(x.shape)}")
        v = self.views
        if not self.full_reference:
            parts = [self.head_input(self.maps(x[:, :self.deep_views]), views=self.deep_views)] if self.content else []
            if self.cues:
                parts.append(distortion_cues(x[:, 0], x[:, 1], PATCH, self.exposure))
            return torch.cat(parts, 1)
        f = self.head_input(self.maps(x[:, :v]), self.maps(x[:, v:2 * v]))
        if not self.metrics:
            return f
        m = view_metrics(*(x[:, k * v:(k + 1) * v].flatten(0, 1) for k in range(3)))
        return torch.cat([f, m.view(len(x), -1)], 1)

    def forward(self, x: Prepared | list[Tensor]) -> Tensor:
        """(B, V', 3, H, W) views (with ``bitstream``: and their (B, N_BITSTREAM) cues) -> per-frame quality (B,) on the
        0-100 scale (not clamped)."""
        if isinstance(x, Tensor) == self.bitstream:
            raise ValueError("a bitstream network takes (views, bitstream cues); others take the views alone")
        if isinstance(x, Tensor):
            return self.head(self.norm(self.frame_features(x)))
        views, side = x
        if side.shape != (len(views), N_BITSTREAM):
            raise ValueError(f"expected ({len(views)}, {N_BITSTREAM}) bitstream cues, got {tuple(side.shape)}")
        f = self.frame_features(views)
        return self.head(self.norm(torch.cat([f, side.to(f.dtype)], 1)))


class VideoModel(QualityModel):
    """No-reference video (and image) quality 0-100: per-frame scores of 8 keyframe-aligned frames, mean-pooled.
    Subclasses name the model and its weights."""

    mode = "NR"
    net_class = VideoNet
    map_tile = DISPLAY_LINES

    def __init__(self, device: str | torch.device = "cpu", weights: str | None = None) -> None:
        super().__init__(device, weights)
        self.sampler = UniformKeyframes(FRAMES)
        if self.net.full_reference != (self.mode == "FR"):
            kind = "full-reference" if self.net.full_reference else "no-reference"
            raise WeightsError(f"{weights or self.weights_name} holds a {kind} network; model {self.name} is "
                               f"{self.mode}: use weights trained for it")

    def map_frame(self, frame: np.ndarray) -> np.ndarray:
        return display_frame(frame)

    def begin(self, media: str | Path | np.ndarray, state: dict[str, Any]) -> None:
        """Bitstream networks: the file's bitstream cues (unknown for arrays, images and raw video)."""
        if self.net.bitstream:
            state["bitstream"] = file_bitstream_cues(media)

    def with_side(self, views: Tensor, state: dict[str, Any]) -> Prepared:
        """The views, paired with the file's bitstream cues for a bitstream network (unknown where ``begin`` found
        none)."""
        if not self.net.bitstream:
            return views
        side = state.get("bitstream")
        return views, bitstream_cues(None) if side is None else side

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> Prepared:
        ordinal = state["ordinal"] = state.get("ordinal", -1) + 1
        gen = frame_generator(self.net.positions, ordinal)
        return self.with_side(frame_views(frame, gen, self.net.whole_view, self.net.grid), state)

    def train_views(self, frame: np.ndarray, rng: np.random.Generator, state: dict[str, Any]) -> Prepared:
        """Training input of one frame: fragments at random cell positions, both views flipped together at random."""
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        views = frame_views(frame, gen, self.net.whole_view, self.net.grid)
        return self.with_side(views.flip(-1) if rng.random() < 0.5 else views, state)


class UGCModel(VideoModel):
    """User-generated video and photos: capture and upload degradations."""

    name, weights_name = "ugc", "video-ugc"


class PGCModel(VideoModel):
    """Professionally produced video through codec and resolution ladders (trained to VMAF)."""

    name, weights_name = "pgc", "video-pgc"


class GameModel(VideoModel):
    """Game, CGI and animated video through codec and resolution ladders (trained to VMAF)."""

    name, weights_name = "game", "video-game"


class PGCFullReferenceModel(VideoModel):
    """Compressed video against its source: the distorted and reference views of each frame (trained to VMAF)."""

    name, weights_name = "pgc-fr", "video-pgc-fr"
    mode = "FR"
    sizes_own_reference = True  # the distorted frame is scaled to the reference here, not the other way round

    def __init__(self, device: str | torch.device = "cpu", weights: str | None = None) -> None:
        super().__init__(device, weights)
        self.context_frames = int(self.net.metrics)  # the reference frame before each scored one, for motion

    def observe(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> None:
        if ref is not None:
            state["prev_ref"] = frame_views(ref, grid=self.net.grid)

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> Tensor:
        if ref is None:
            raise ValueError(f"model {self.name} is full-reference: give the reference with --ref")
        ref_views = frame_views(ref, grid=self.net.grid)
        views = [frame_views(match_size(frame, ref.shape[:2]), grid=self.net.grid), ref_views]
        if self.net.metrics:  # no previous frame (an image, a first frame): the reference itself, motion 0
            views.append(state.get("prev_ref", ref_views))
            state["prev_ref"] = ref_views
        return torch.cat(views)


for _cls, _what in ((UGCModel, "User-generated video and photos: capture and upload degradations"),
                    (PGCModel, "Professionally compressed video: codec and resolution ladders, VMAF-like"),
                    (GameModel, "Game, CGI and animated video under codec ladders, VMAF-like"),
                    (PGCFullReferenceModel, "Compressed video against its source, VMAF-like")):
    register(ModelSpec(_cls.name, _cls, f"{_what}, 0-100", suite="video", weights=_cls.weights_name))

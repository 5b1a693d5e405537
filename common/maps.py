"""Quality maps (no-reference) and error maps (full-reference): where in an image a model finds the damage.

A model that sets ``map_tile`` scores square tiles of that side, cut from :meth:`Model.map_frame` of the
image (the scale its ``prepare`` works at), exactly as it scores a whole frame; every pixel then gets the
mean score of the tiles that cover it. Tiles overlap by about half a tile, and at most ``most`` of them
are placed along each side (more only where fewer would leave gaps), so the cost stays bounded. For a
full-reference model the reference is cut at the same positions, so the map shows where the distorted
image departs from its reference. The idea is the patch-level quality maps of Ying et al., "From patches
to pictures (PaQ-2-PiQ)", CVPR 2020, computed here by re-scoring tiles rather than by a dedicated head.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from common.media import rgb_array_to_luma, to_uint8
from common.model import Model, main_tensor, stack_prepared
from common.runner import model_forward

MOST_TILES = 10  # tiles along each side, at most


@dataclass(frozen=True)
class QualityMap:
    """Per-pixel scores (in the model's units) at the size of the map frame, and how they were made."""

    scores: np.ndarray  # (H, W) float64
    tile: int
    tiles: int
    higher_better: bool
    score_range: tuple[float, float]

    def goodness(self) -> np.ndarray:
        """(H, W) in [0, 1], 1 at the best end of the model's score range whatever its direction."""
        lo, hi = self.score_range
        g = np.clip((self.scores - lo) / max(hi - lo, 1e-12), 0, 1)
        return g if self.higher_better else 1 - g


def tile_starts(length: int, tile: int, most: int = MOST_TILES) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``length`` pixels: about half a tile apart, or as far
    apart as ``most`` tiles allow, but never leaving a gap."""
    if length <= tile:
        return [0]
    n = max(min(most, int(np.ceil((length - tile) / (tile / 2))) + 1), int(np.ceil((length - tile) / tile)) + 1)
    return sorted({int(round(v)) for v in np.linspace(0, length - tile, max(2, n))})


def _check_image(name: str, a: np.ndarray) -> None:
    if not isinstance(a, np.ndarray) or a.ndim != 3 or a.shape[2] != 3 or a.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"quality_map: {name} must be an HxWx3 uint8 or uint16 RGB array")


def _resized(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if img.shape[:2] == hw:
        return img
    return np.asarray(Image.fromarray(to_uint8(img)).resize((hw[1], hw[0]), Image.Resampling.BICUBIC))


def quality_map(model: Model, image: np.ndarray, ref: np.ndarray | None = None,
                most: int = MOST_TILES) -> QualityMap:
    """The tile scores of ``model`` spread over ``image`` (HxWx3 RGB); full-reference models need ``ref``.

    When the two sides differ in size, the distorted image is scaled (bicubic) to the reference's size for
    models that compare at the reference's size (``sizes_own_reference``), else the reference to the
    distorted image's, as ``dqa score --resize-ref`` does.
    """
    if model.map_tile is None:
        raise ValueError(f"model {model.name} has no quality map (it needs whole frames or several of them)")
    _check_image("image", image)
    if model.mode == "FR":
        if ref is None:
            raise ValueError(f"model {model.name} is full-reference: its error map needs the reference image")
        _check_image("ref", ref)
        if model.sizes_own_reference:
            image = _resized(image, ref.shape[:2])
        else:
            ref = _resized(ref, image.shape[:2])
    frame = model.map_frame(image)
    other = None if ref is None or model.mode != "FR" else model.map_frame(ref)
    if model.pixels == "luma":
        frame = rgb_array_to_luma(frame)
        other = None if other is None else rgb_array_to_luma(other)
    h, w = frame.shape[:2]
    tile = min(model.map_tile, h, w)
    boxes = [(y, x) for y in tile_starts(h, tile, most) for x in tile_starts(w, tile, most)]
    state: dict = {}
    model.begin(image, state)
    items = [model.prepare(np.array(frame[y:y + tile, x:x + tile]),  # copies: writable and contiguous
                           None if other is None else np.array(other[y:y + tile, x:x + tile]), dict(state))
             for y, x in boxes]
    size = model.batch_size(main_tensor(items[0]).shape)
    outputs = torch.cat([model_forward(model, stack_prepared(items[i:i + size])) for i in range(0, len(items), size)])
    scores, _ = model.finalize(outputs)
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    for (y, x), s in zip(boxes, scores):
        total[y:y + tile, x:x + tile] += s
        count[y:y + tile, x:x + tile] += 1
    return QualityMap(total / np.maximum(count, 1), tile, len(boxes), model.higher_better, model.score_range)

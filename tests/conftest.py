"""Shared fixtures: media generated at test time (nothing large is committed) and a tiny NR test model."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from common.media import resize, to_tensor
from common.model import Model
from common.registry import ModelSpec, register
from tests import mediagen

SAMPLES = Path(__file__).resolve().parent.parent / "common" / "samples"


class TinyNR(Model):
    """A real (untrained) no-reference model for runner tests: mean of a 32x32 thumbnail; records batches."""

    name = "tiny-nr"
    mode = "NR"
    calls: list[list[float]] = []

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> torch.Tensor:
        if min(frame.shape[:2]) < 2:
            raise ValueError(f"{frame.shape[1]}x{frame.shape[0]} is too small for tiny-nr (needs 2x2)")
        return resize(to_tensor(frame), (32, 32), keep_aspect=False)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        TinyNR.calls.append(batch.shape[0])
        return batch.mean(dim=(1, 2, 3)) * 100


register(ModelSpec("tiny-nr", TinyNR, "test model", suite="test"))


@pytest.fixture()
def tiny_model() -> TinyNR:
    TinyNR.calls = []
    return TinyNR()


def transcode(src: Path, dst: Path, crf: int) -> None:
    """Re-encode a clip with libx264 at a CRF (a one-rung encoding ladder)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        s = out.add_stream("libx264", rate=vin.average_rate)
        s.width, s.height, s.pix_fmt = vin.width, vin.height, "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in inp.decode(vin):
            for p in s.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


@pytest.fixture(scope="session")
def video_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A reference folder with two clips and a distorted folder with encodes named after them."""
    root = tmp_path_factory.mktemp("pairs")
    ref, dist = root / "ref", root / "dist"
    ref.mkdir()
    dist.mkdir()
    mediagen.make_clip(ref / "a.mp4", n_frames=12, size=(160, 96), codec="libx264")
    mediagen.make_clip(ref / "b.mp4", n_frames=10, size=(128, 96), codec="libx264")
    for name, crf in (("a_crf20", 20), ("a_crf45", 45), ("b_crf35", 35)):
        src = ref / f"{name.split('_')[0]}.mp4"
        transcode(src, dist / f"{name}.mp4", crf=crf)
    return ref, dist


@pytest.fixture(scope="session")
def bad_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The acceptance folder: broken files beside awkward but valid ones."""
    d = tmp_path_factory.mktemp("bad")
    mediagen.make_zero_byte(d / "zero.mp4")
    mediagen.make_clip(d / "src.mp4", n_frames=20, size=(160, 96))
    mediagen.make_truncated(d / "src.mp4", d / "truncated.mp4")
    (d / "src.mp4").unlink()
    mediagen.make_text_as_jpg(d / "notes.jpg")
    mediagen.make_1x1_png(d / "one.png")
    mediagen.make_png16(d / "deep.png")
    mediagen.make_cmyk_jpeg(d / "cmyk.jpg")
    mediagen.make_clip(d / "phone.mp4", n_frames=8, size=(160, 96), rotation=90)
    mediagen.make_10bit_clip(d / "ten_bit.mkv")
    return d


@pytest.fixture()
def bad_copy(bad_folder: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bad"
    shutil.copytree(bad_folder, dst)
    return dst

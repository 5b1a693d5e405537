"""Teacher labels (VIF, the fused label) and the dataset builders."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.data import build as build_mod
from common.data.build import Recipe, build, fit_long_side, parse_chain, register_recipe
from common.data.catalogue import Entry
from common.data.degrade import degrade
from common.data.teacher import fuse, fused_label
from common.media import rgb_array_to_luma
from common.metrics.fr import vif
from tests.mediagen import make_clip

SAMPLES = Path(__file__).resolve().parents[1] / "common" / "samples" / "ref"
# sewar 0.4.6 full_ref.vifp (a port of Sheikh's vifp_mscale.m) on BT.601 luma of the level-3 degradations, seed 0
VIFP_SEWAR = {("astronaut", "gaussian_blur"): 0.371087, ("astronaut", "jpeg"): 0.59732,
              ("astronaut", "contrast"): 0.737451, ("chelsea", "gaussian_noise"): 0.427524,
              ("coffee", "brightness"): 0.737144}


def _img(name: str) -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / f"{name}.png").convert("RGB"))


def _luma(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb_array_to_luma(a)).float()[None, None]


@pytest.mark.parametrize(("name", "kind"), list(VIFP_SEWAR))
def test_vif_matches_sewar(name: str, kind: str) -> None:
    img = _img(name)
    value = vif(_luma(degrade(img, kind, level=3)), _luma(img)).item()
    assert value == pytest.approx(VIFP_SEWAR[name, kind], abs=1e-4)


def test_vif_identity_and_validation() -> None:
    x = _luma(_img("chelsea"))
    assert vif(x, x).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 41"):
        vif(x[..., :30, :30], x[..., :30, :30])


def test_fused_label_sees_colour_that_luma_metrics_miss() -> None:
    img = _img("astronaut")
    assert fused_label(img, img).fused == pytest.approx(100.0)
    grey = degrade(img, "saturation", level=5)
    label = fused_label(grey, img)
    assert label.ms_ssim > 0.99 and label.vif > 0.95  # luma barely changes ...
    assert label.fused < 60  # ... but a fully desaturated photo is clearly damaged
    # probability summation (Minkowski exponent 3): one term at its scale costs more than all four at a third
    # of theirs (a plain sum would rate them equal), and a term alone counts fully
    one = fuse({"ms_ssim": 0.045, "gmsd": 0, "vif": 0, "ciede2000": 0})
    assert fuse({"ms_ssim": 0.015, "gmsd": 0.019, "vif": 0.5 / 3, "ciede2000": 1.1}) > one + 10
    assert one == pytest.approx(fuse({"ms_ssim": 0, "gmsd": 0, "vif": 0, "ciede2000": 3.3}))


def test_fused_label_validation() -> None:
    img = _img("coffee")
    with pytest.raises(ValueError, match="same shape"):
        fused_label(img[:200], img)
    with pytest.raises(TypeError, match="uint8"):
        fused_label(img.astype(np.float32), img)


def test_parse_chain() -> None:
    assert parse_chain("low_light@2+jpeg") == [("low_light", 2), ("jpeg", None)]
    for bad, match in (("jpeg+blurry", "unknown"), ("jpeg@2", "exactly one"), ("low_light@9+jpeg", "1-5")):
        with pytest.raises(ValueError, match=match):
            parse_chain(bad)
    with pytest.raises(ValueError, match="unknown degradation 'wobble'"):  # checked when a suite registers
        register_recipe(Recipe(suite="test-bad-kind", media="video", select=lambda e: True, make_clip=lambda p: ([], 1.0),
                               distortions=("h264", "wobble"), teacher="fused"))


def _fake_catalogue(root: Path) -> list[Entry]:
    entries = []
    for name in ("astronaut", "chelsea", "coffee"):
        rel = f"debian/fake/{name}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_img(name)[:256, :256]).save(root / rel)
        entries.append(Entry(rel, "photo", "", 256, 256, (root / rel).stat().st_size, "fake", "CC0"))
    clip = make_clip(root / "debian/fake/clip.mp4", n_frames=8, size=(240, 176))
    entries.append(Entry("debian/fake/clip.mp4", "video", "", 240, 176, clip.stat().st_size, "fake", "CC0"))
    return entries


def _rows(manifest: Path) -> list[dict]:
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def test_image_build_splits_by_content_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = _fake_catalogue(tmp_path)
    monkeypatch.setattr(build_mod, "held_out", lambda: frozenset({"debian/fake/chelsea.png"}))
    register_recipe(Recipe(suite="test-images", media="image", select=lambda e: e.tag == "photo",
                           prepare=fit_long_side(200), distortions=("gaussian_blur", "low_light@2+jpeg"),
                           labels=lambda kind: {"blurred": float(kind == "gaussian_blur")}, teacher="fused"))
    manifest = build("test-images", root=tmp_path, catalogue=cat, workers=2, progress=False)
    rows = _rows(manifest)
    assert len(rows) == 3 * (1 + 2 * 5)
    assert {r["content"] for r in rows if r["split"] == "test"} == {"debian/fake/chelsea.png"}
    for r in rows:
        labels = json.loads(r["labels"])
        assert (manifest.parent / r["path"]).is_file() and set(labels) == {"fused", "blurred"}
        assert (r["kind"] == "pristine") == (r["ref"] == "") == (r["level"] == "0")
        assert max(Image.open(manifest.parent / r["path"]).size) == 200
    for content in {r["content"] for r in rows}:  # the teacher falls with severity in every list
        for kind in ("gaussian_blur", "low_light@2+jpeg"):
            labels = [json.loads(r["labels"])["fused"] for r in rows if r["content"] == content and r["kind"] == kind]
            assert np.all(np.diff(labels) < 0)
    meta = json.loads((manifest.parent / "manifest.json").read_text())
    assert meta["held_out"] == ["debian/fake/chelsea.png"] and meta["label"] == "fused" and meta["rows"] == len(rows)
    # resume: a lost part is rebuilt, byte-identical, and nothing else is touched
    part = sorted((manifest.parent / "parts").glob("astronaut-*.csv"))[0]
    blur = manifest.parent / rows[1]["path"]
    before = {p: p.read_bytes() for p in (part, blur)}
    other = sorted((manifest.parent / "parts").glob("coffee-*.csv"))[0].stat().st_mtime_ns
    part.unlink()
    build("test-images", root=tmp_path, catalogue=cat, workers=1, progress=False)
    assert {p: p.read_bytes() for p in (part, blur)} == before
    assert sorted((manifest.parent / "parts").glob("coffee-*.csv"))[0].stat().st_mtime_ns == other
    assert _rows(manifest) == rows


def test_video_build_small_with_vmaf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("vmaf_torch")
    from common.data.build_video import clip_reader

    cat = _fake_catalogue(tmp_path)
    monkeypatch.setattr(build_mod, "held_out", lambda: frozenset())
    register_recipe(Recipe(suite="test-video", media="video", select=lambda e: e.tag == "video",
                           make_clip=clip_reader(1.0, 176), distortions=("h264", "ladder"), label="vmaf",
                           vmaf=True, teacher="vmaf"))
    rows = _rows(build("test-video", small=True, root=tmp_path, catalogue=cat, workers=1, progress=False))
    assert [(r["kind"], r["level"]) for r in rows] == [("pristine", "0")] + [
        (k, str(lv)) for k in ("h264", "ladder") for lv in (1, 3, 5)]
    vmaf = [json.loads(r["labels"])["vmaf"] for r in rows]
    assert vmaf[0] > 95 and vmaf[1] > vmaf[3] and vmaf[4] > vmaf[6]
    assert all(r["split"] == "train" for r in rows)


def test_ugc_pans_never_scale_a_small_photo_up(tmp_path: Path) -> None:
    from suites.video.data import clip_or_pan, pan_window

    assert pan_window((1280, 720), (854, 480), native=True) == (854, 480)  # a large image: the target window
    assert pan_window((512, 384), (854, 480), native=True) == (460, 344)
    assert pan_window((512, 384), (854, 480), native=False) == (854, 480)
    img = _img("astronaut")[:300, :380]
    Image.fromarray(img).save(tmp_path / "small.png")
    frames, fps = clip_or_pan(1.0, 480, native=True)(tmp_path / "small.png")
    assert fps == 30 and len(frames) == 30 and frames[0].shape == (270, 342, 3)
    first, last = frames[0], frames[-1]
    assert np.array_equal(first, img[:270, :342]) and np.array_equal(last, img[10:280, 38:380])  # pixels as taken
    stretched, _ = clip_or_pan(1.0, 480)(tmp_path / "small.png")
    assert stretched[0].shape == (480, 852, 3)


def test_build_refuses_missing_sources(tmp_path: Path) -> None:
    from common.errors import DqaError

    with pytest.raises(DqaError, match="dqa data fetch"):
        build("night", small=True, root=tmp_path, progress=False)
    with pytest.raises(ValueError, match="no data recipe"):
        build("nope", root=tmp_path)


def test_a_bad_source_is_reported_and_the_build_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = _fake_catalogue(tmp_path)
    (tmp_path / cat[1].path).write_bytes(b"not a png")
    bad = Entry(cat[1].path, "photo", "", 256, 256, len(b"not a png"), "fake", "CC0")
    monkeypatch.setattr(build_mod, "held_out", lambda: frozenset())
    register_recipe(Recipe(suite="test-bad", media="image", select=lambda e: e.tag == "photo",
                           prepare=fit_long_side(200), distortions=("jpeg",), teacher="fused"))
    manifest = build("test-bad", small=True, root=tmp_path, catalogue=[cat[0], bad, cat[2]], progress=False)
    meta = json.loads((manifest.parent / "manifest.json").read_text())
    assert len(meta["failed"]) == 1 and meta["failed"][0].startswith(bad.path)
    assert {r["content"] for r in _rows(manifest)} == {cat[0].path}  # small: 2 train contents, one failed

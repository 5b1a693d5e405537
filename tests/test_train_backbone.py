"""Backbone pretraining: the recipe's data, the objective, and `dqa train backbone --small` with resume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import main
from common.data import build as build_mod
from common.data.build import build, get_recipe
from common.data.catalogue import Entry
from common.data.degrade import KINDS
from common.data.manifest import read_manifest
from common.train.backbone import (DecodedImages, PretrainLoss, PretrainNet, SeverityLists, collate,
                                   severity_lists)
from tests.test_data_degrade import SAMPLES


def test_recipe_covers_every_domain_and_kind() -> None:
    r = get_recipe("backbone")
    assert set(KINDS) <= set(r.distortions)
    tags = {t for t in ("photo", "art", "screen", "video") if r.select(Entry("x", t, "", 640, 480, 1, "p", "l"))}
    assert tags == {"photo", "art", "screen", "video"}
    assert r.prepare(np.zeros((1080, 1920, 3), np.uint8)).shape == (512, 512, 3)
    assert r.prepare(np.zeros((300, 400, 3), np.uint8)).shape == (300, 400, 3)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    entries = []
    for i, img in enumerate(SAMPLES):
        rel = f"debian/fake/{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / rel)
        entries.append(Entry(rel, "photo", "", 256, 256, (root / rel).stat().st_size, "fake", "CC0"))
    mp = pytest.MonkeyPatch()
    mp.setattr(build_mod, "held_out", lambda: frozenset({"debian/fake/2.png"}))
    try:
        return build("backbone", small=True, root=root, catalogue=entries, workers=1, progress=False).parent
    finally:
        mp.undo()


def test_severity_lists_and_batches(small_set: Path) -> None:
    items = read_manifest(small_set).items
    lists = severity_lists([i for i in items if i.split == "train"])
    assert len(lists) == 2 * 4 and all(len(x) == 4 and x[0].kind == "pristine" for x in lists)
    assert all([i.level for i in x] == [0, 1, 3, 5] for x in lists)
    data = SeverityLists(lists, crop=64, seed=1)
    a, b = data[0], data[0]
    assert a["views"].shape == (4, 2, 3, 64, 64) and a["views"].dtype == torch.uint8
    assert torch.equal(a["views"], b["views"]) and a["label"][0] == 100 and torch.all(a["label"][1:] < 100)
    data.set_epoch(1)
    assert not torch.equal(data[0]["views"], a["views"])  # other crops in another epoch
    batch = collate([data[0], data[1]])
    net = PretrainNet(width=0.125)
    loss, figures = PretrainLoss().loss(net, batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and set(figures) == {"l1", "plcc", "rank", "contrast"}
    loss.backward()
    assert net.backbone.conv1.weight.grad is not None and net.project[0].weight.grad is not None
    pred, label = PretrainLoss().predict(net, batch)
    assert pred.shape == label.shape == (8,)


def test_decoded_images_serve_the_same_crops(small_set: Path, tmp_path: Path) -> None:
    lists = severity_lists([i for i in read_manifest(small_set).items if i.split == "train"])
    odd = tmp_path / "odd.png"  # another size in the same file
    Image.fromarray(np.arange(7 * 5 * 3, dtype=np.uint8).reshape(7, 5, 3)).save(odd)
    paths = [*dict.fromkeys(r.path for rows in lists for r in rows), odd]
    decoded = DecodedImages(paths, tmp_path / "cache", progress=False)
    assert np.array_equal(decoded[odd], np.asarray(Image.open(odd)))
    file = next((tmp_path / "cache").glob("decoded-*.npy"))
    stamp = file.stat().st_mtime_ns
    again = DecodedImages(paths, tmp_path / "cache", progress=False)  # reuses the file
    assert file.stat().st_mtime_ns == stamp and np.array_equal(again[paths[0]], np.asarray(Image.open(paths[0])))
    plain, cached = SeverityLists(lists, crop=64, seed=3), SeverityLists(lists, crop=64, seed=3, decoded=decoded)
    assert all(torch.equal(plain[k]["views"], cached[k]["views"]) for k in range(len(lists)))


def test_dqa_train_backbone_small_runs_and_resumes(small_set: Path, tmp_path: Path) -> None:
    out, ck = tmp_path / "bb.pt", tmp_path / "ck.pt"
    args = ["-q", "train", "backbone", "--small", "--set", str(small_set), "--out", str(out), "--checkpoint", str(ck)]
    assert main([*args, "--max-steps", "2"]) == 0
    assert torch.load(ck, weights_only=True)["state"]["step"] == 2 and out.is_file()
    assert main([*args, "--epochs", "2"]) == 0  # resumes at step 2 and finishes both epochs (4 steps each)
    state = torch.load(ck, weights_only=True)["state"]
    assert state["step"] == 8 and [r["epoch"] for r in state["history"]] == [1, 2]
    log = [json.loads(x) for x in ck.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all("train_loss" in r for r in log)
    shipped = torch.load(out, weights_only=True)
    assert all(v.dtype in (torch.float16, torch.int64) for v in shipped["backbone"].values())
    assert shipped["config"]["command"].startswith("dqa -q train backbone --small") and shipped["config"]["steps"] == 8
    from common.registry import load_model

    model = load_model("iqa", device="cpu", weights=str(out))  # the file is a general NR model
    assert model.net.backbone.width == 0.125
    r = model.score(SAMPLES[0])
    assert r.ok and 0 <= r.score <= 100 and len(r.frames) == 1


def test_linear_probe_writes_table_rows(small_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from common.train.probe import Ridge, fit_probe, probe
    from common.weights import load_manifest

    monkeypatch.setenv("DQA_WEIGHTS", str(tmp_path / "w"))
    out = tmp_path / "w" / "bb.pt"
    assert main(["-q", "train", "backbone", "--small", "--set", str(small_set), "--out", str(out),
                 "--checkpoint", str(tmp_path / "ck.pt"), "--max-steps", "1"]) == 0
    ev = probe(small_set, out, out_dir=tmp_path / "eval", progress=False)
    measured = load_manifest(tmp_path / "w")["bb"]["measured"]["held_out_linear_probe"]
    assert measured["command"].endswith(f"--weights {out} --out {tmp_path / 'eval'}")
    assert measured["backbone-probe"]["n"] == 13
    out.write_bytes(out.read_bytes() + b"x")  # no longer the file the manifest lists: figures stay out
    probe(small_set, out, out_dir=tmp_path / "eval2", progress=False, suite="other")
    assert load_manifest(tmp_path / "w")["bb"]["measured"]["held_out_linear_probe"] == measured
    rows = {r["model"]: r for r in ev.table["models"]}
    assert set(rows) == {"backbone-probe", "random-init-probe"} and rows["backbone-probe"]["weights_sha256"]
    assert all(r["n"] == 13 and r["l_lists"] == 4 for r in rows.values())  # held-out content: pristine + 4 x 3 levels
    assert (tmp_path / "eval" / "backbone.md").is_file()
    rng = np.random.default_rng(0)  # the ridge itself recovers a linear target
    x = rng.normal(size=(200, 5))
    y = x @ np.array([1.0, -2, 0, 0, 3]) + 50
    ridge = fit_probe(x, y, np.arange(200) % 10)
    assert isinstance(ridge, Ridge) and np.corrcoef(ridge.predict(x), y)[0, 1] > 0.99


def test_speed_probe_times_a_step() -> None:
    from common.train.speed import step_seconds

    assert 0 < step_seconds(0.125, 64, lists=1, steps=1) < 60

"""Evaluation harness: statistics with known answers, the Waterloo D/L/P tests on a hand-built table, and
`dqa eval` end to end on a tiny generated set (tables, merging, the score cache, usage errors)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from common.cli import main
from common.data.degrade import degrade
from common.data.manifest import Item, read_manifest
from common.eval.protocol import assess, p_test
from common.eval.stats import auc, correlations, fit_mapping, krcc, logistic4, srcc


# ---- statistics -------------------------------------------------------------------------------------------

def test_perfect_ranking_with_logistic_labels() -> None:
    x = np.random.default_rng(1).uniform(0, 10, 200)
    y = logistic4(x, 95.0, 5.0, 4.0, 1.5)
    c = correlations(x, y)
    assert c.srcc == pytest.approx(1) and c.krcc == pytest.approx(1)
    assert c.mapping == "logistic" and c.plcc == pytest.approx(1, abs=1e-6) and c.rmse < 1e-3
    assert c.n == 200 and c.note is None


def test_reversed_ranking() -> None:
    x = np.arange(50.0)
    assert srcc(x, -x) == pytest.approx(-1) and krcc(x, -x) == pytest.approx(-1)
    c = correlations(x, 100 - 2 * x)  # the fitted map falls with the scores, so PLCC is still 1
    assert c.srcc == pytest.approx(-1) and c.plcc == pytest.approx(1) and c.rmse < 1e-3


def test_random_ranking_is_near_zero() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=3000), rng.normal(size=3000)
    assert abs(srcc(x, y)) < 0.05 and abs(krcc(x, y)) < 0.04 and abs(correlations(x, y).plcc) < 0.1


def test_auc_perfect_chance_ties() -> None:
    assert auc([3, 4, 5], [0, 1, 2]) == 1 and auc([0, 1], [2, 3]) == 0
    assert auc([1, 1, 1], [1, 1]) == 0.5  # all tied: chance
    assert auc([1, 2], [1]) == pytest.approx(0.75)  # one win, one tie counting half
    rng = np.random.default_rng(3)
    assert auc(rng.normal(size=4000), rng.normal(size=4000)) == pytest.approx(0.5, abs=0.02)
    assert np.isnan(auc([], [1, 2])) and np.isnan(auc([1, np.nan], [np.nan]))


@pytest.mark.filterwarnings("error")
def test_undefined_inputs_give_nan_with_a_reason() -> None:
    c = correlations(np.full(20, 3.0), np.arange(20.0))
    assert np.isnan([c.srcc, c.krcc, c.plcc, c.rmse]).all() and "scores are constant" in c.note
    assert "labels are constant" in correlations(np.arange(20.0), np.ones(20)).note
    c = correlations([1.0, np.nan, 2.0, np.inf], [1.0, 2.0, 3.0, 4.0])
    assert c.n == 2 and np.isnan(c.srcc) and "at least 3" in c.note
    assert np.isnan(srcc(np.ones(5), np.arange(5.0))) and np.isnan(krcc([1.0], [2.0]))
    c = correlations([1.0, 2.0, 3.0, 5.0], [10.0, 30.0, 20.0, 50.0])  # too few points for 4 parameters
    assert c.mapping == "linear" and np.isfinite(c.plcc)
    with pytest.raises(ValueError, match="differ in length"):
        srcc([1.0, 2.0], [1.0])


def test_mapping_falls_back_to_a_line_when_the_fit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy import optimize

    def no_convergence(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Optimal parameters not found: maxfev reached")

    x = np.linspace(0, 1, 30)
    monkeypatch.setattr(optimize, "curve_fit", no_convergence)
    m = fit_mapping(x, 3 * x + 1)
    assert m.kind == "linear" and np.allclose(m(x), 3 * x + 1)


# ---- the Waterloo tests on a hand-built table -------------------------------------------------------------

# (content, kind, level, fused label, score). Content A is scored exactly as labelled; B reverses its blur
# list, ties noise 1 with the pristine, and ties jpeg with noise 2.
ROWS = [
    ("A", "pristine", 0, 100, 100), ("A", "blur", 1, 80, 80), ("A", "blur", 2, 60, 60), ("A", "blur", 3, 40, 40),
    ("A", "noise", 1, 90, 90), ("A", "noise", 2, 50, 50), ("A", "jpeg", 3, 70, 70),
    ("B", "pristine", 0, 100, 100), ("B", "blur", 1, 80, 40), ("B", "blur", 2, 60, 60), ("B", "blur", 3, 40, 80),
    ("B", "noise", 1, 90, 100), ("B", "noise", 2, 50, 50), ("B", "jpeg", 3, 70, 50),
]


def _table() -> tuple[list[Item], np.ndarray]:
    items = []
    for i, (content, kind, level, fused, _) in enumerate(ROWS):
        labels = {"fused": float(fused)}
        if kind in ("pristine", "blur"):
            labels["true_4k"] = float(kind == "pristine")
        items.append(Item(Path(f"{i}.png"), None if kind == "pristine" else Path("p.png"), content, kind, level, labels))
    return items, np.array([r[4] for r in ROWS], dtype=np.float64)


@pytest.mark.parametrize("higher_better", [True, False])
def test_d_l_p_tests_known_answers(higher_better: bool) -> None:
    items, scores = _table()
    a = assess(items, scores if higher_better else -scores, higher_better, "fused", binary=["true_4k"])
    # D: 2 pristine x 12 distorted pairs, all won except B's noise 1, tied with both pristine rows.
    assert a.d_auc == pytest.approx(23 / 24)
    # L: A blur 1, A noise 1, B blur 0.2 (1 - 6*8/60), B noise sqrt(3)/2 (tied ranks); jpeg has 2 levels only.
    assert a.l.lists == 4 and a.l.flat == 0
    assert a.l.value == pytest.approx((1 + 1 + 0.2 + np.sqrt(3) / 2) / 4)
    # P: 10 pairs per content differ by >= 20; A agrees on all, B on 4 plus one tie.
    assert a.p.pairs == 20 and a.p.value == pytest.approx(14.5 / 20)
    assert a.binary == {"true_4k": 1.0}
    assert a.n == 14 and a.corr.srcc > 0 and a.corr.krcc > 0 and not a.notes
    # Breakdowns: per kind, and each pristine row's part of the D-test (B's ties with its noise 1: 11.5 of 12).
    assert a.l.by_kind == pytest.approx({"blur": 0.6, "noise": (1 + np.sqrt(3) / 2) / 2})
    assert a.d_by_content == pytest.approx({"A": 11.5 / 12, "B": 11.5 / 12})
    assert np.mean(list(a.d_by_content.values())) == pytest.approx(a.d_auc)
    # ... and by kind and by level: B's noise 1 (level 1) ties with both pristine rows, 2 of 8 pairs.
    assert a.d_by_kind == pytest.approx({"blur": 1, "noise": 7 / 8, "jpeg": 1})
    assert a.d_by_level == pytest.approx({"1": 7 / 8, "2": 1, "3": 1})


def test_orientation_makes_a_good_lower_is_better_model_positive() -> None:
    items, scores = _table()
    fused = np.array([r[3] for r in ROWS], dtype=np.float64)
    assert srcc(-fused, fused) == pytest.approx(-1)
    a = assess(items, -fused, False, "fused")
    assert a.corr.srcc == pytest.approx(1) and a.corr.krcc == pytest.approx(1) and a.p.value == 1


def test_protocol_edge_cases() -> None:
    items, scores = _table()
    scores[[1, 2, 3]] = 7.0  # A's blur list: distorted rows flat, pristine at 7 too
    scores[0] = 7.0
    a = assess(items, scores, True, "fused", margin=95)
    assert a.l.lists == 4 and a.l.flat == 1 and any("constant scores" in n for n in a.notes)
    assert a.p.pairs == 0 and np.isnan(a.p.value) and any("P-test" in n for n in a.notes)
    failed = np.full(len(items), np.nan)
    a = assess(items, failed, True, "fused")
    assert a.n == 0 and np.isnan(a.d_auc) and a.l.lists == 0 and "at least 3" in a.corr.note
    with pytest.raises(ValueError, match="margin"):
        p_test(items, scores, scores, margin=0)


# ---- dqa eval end to end ----------------------------------------------------------------------------------

def _photo(seed: int, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = ndimage.gaussian_filter(rng.uniform(0, 255, (size, size, 3)), (2, 2, 0))
    img += np.linspace(0, 60, size)[None, :, None]
    return np.clip((img - img.min()) / np.ptp(img) * 255, 0, 255).astype(np.uint8)


@pytest.fixture()
def image_set(tmp_path: Path) -> Path:
    """Three contents (two test, one train): pristine, blur and noise at levels 1, 3, 5, and one broken file."""
    root = tmp_path / "set"
    (root / "img").mkdir(parents=True)
    rows = []
    for c, split in (("c0", "test"), ("c1", "test"), ("c2", "train")):
        img = _photo(int(c[1]))
        Image.fromarray(img).save(root / "img" / f"{c}.png")
        rows.append([f"img/{c}.png", "", c, "pristine", 0, {"fused": 100, "vmaf": 100, "true_4k": 1}, split])
        for kind, step in (("gaussian_blur", 15), ("gaussian_noise", 12)):
            for level in (1, 3, 5):
                name = f"img/{c}_{kind}_{level}.png"
                Image.fromarray(degrade(img, kind, level=level, seed=0)).save(root / name)
                labels = {"fused": 100 - step * level, "vmaf": 100 - 10 * level, "true_4k": 0}
                rows.append([name, f"img/{c}.png", c, kind, level, labels, split])
    rows[1][0] = str(root / rows[1][0])  # absolute paths are accepted too
    (root / "img" / "c1_broken.png").write_text("not an image")
    rows.append(["img/c1_broken.png", "img/c1.png", "c1", "jpeg", 2, {"fused": 50, "true_4k": 0}, "test"])
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "ref", "content", "kind", "level", "labels", "split"])
        w.writerows([*r[:5], json.dumps(r[5]), r[6]] for r in rows)
    meta = {"suite": "tiny", "label": "fused", "labels": ["fused", "vmaf", "true_4k"], "media": "image",
            "small": True, "held_out": ["c0", "c1"]}
    (root / "manifest.json").write_text(json.dumps(meta))
    return root


def test_dqa_eval_end_to_end(image_set: Path, tmp_path: Path, tiny_model, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "eval"
    argv = ["eval", "--suite", "tiny", "--manifest", str(image_set), "--models", "psnr", "tiny-nr", "--out", str(out)]
    assert main(argv) == 1  # the broken file fails, is reported, and the rest is evaluated
    doc = json.loads((out / "tiny.json").read_text())
    md = (out / "tiny.md").read_text()
    assert capsys.readouterr().out.strip() == md.strip()  # the table is printed
    rows = {r["model"]: r for r in doc["models"]}
    assert list(rows) == ["psnr", "tiny-nr"]
    assert doc["set"]["rows"] == 15 and doc["set"]["pristine"] == 2 and doc["set"]["contents"] == 2
    assert doc["set"]["binary_labels"] == ["true_4k"] and doc["set"]["other_labels"] == ["vmaf"]
    psnr = rows["psnr"]
    assert psnr["n"] == 14 and psnr["failed"] == 1 and "c1_broken.png" in psnr["failures"][0]
    assert psnr["d_auc"] == 1 and psnr["l_test"] == pytest.approx(1) and psnr["l_lists"] == 4
    assert psnr["srcc"] > 0.5 and psnr["auc"]["true_4k"] == 1 and psnr["p_pairs"] > 0
    assert psnr["l_by_kind"] == pytest.approx({"gaussian_blur": 1, "gaussian_noise": 1})
    assert psnr["d_by_content"] == {"c0": 1, "c1": 1}
    assert psnr["d_by_kind"] == {"gaussian_blur": 1, "gaussian_noise": 1} and set(psnr["d_by_level"]) == {"1", "3", "5"}
    assert "| D-test by degradation | psnr | tiny-nr |" in md and "| D-test by level | psnr | tiny-nr |" in md
    assert "| L-test by degradation | psnr | tiny-nr |" in md and "| c1 | 1.000 |" in md
    assert rows["tiny-nr"]["n"] == 14 and rows["tiny-nr"]["command"] == psnr["command"]
    for name in ("psnr", "tiny-nr"):
        assert f"| {name} |" in md
    assert "Manifest:" in md and "split `test`" in md and "dqa eval --suite tiny" in md and "AUC true_4k" in md

    cache = image_set / "scores" / "psnr.jsonl"
    before = {r["path"]: r["score"] for r in map(json.loads, cache.read_text().splitlines()) if not r["error"]}
    assert len(before) == 14
    tiny_model.calls.clear()
    assert main(["-q", *argv]) == 1 and capsys.readouterr().out == ""
    assert tiny_model.calls == []  # every readable file came from the cache
    after = {r["path"]: r["score"] for r in map(json.loads, cache.read_text().splitlines()) if not r["error"]}
    assert after == before
    assert json.loads((out / "tiny.json").read_text())["models"][0]["srcc"] == psnr["srcc"]

    # Another model in a separate run joins the same table; the CSV path works as --manifest.
    assert main(["-q", "eval", "--manifest", str(image_set / "manifest.csv"), "--models", "ssim", "--out", str(out)]) == 1
    assert [r["model"] for r in json.loads((out / "tiny.json").read_text())["models"]] == ["psnr", "tiny-nr", "ssim"]

    # Other items (here: every split) replace the table instead of mixing with it.
    assert main(["-q", "eval", "--manifest", str(image_set), "--models", "tiny-nr", "--split", "all", "--out", str(out)]) == 1
    doc = json.loads((out / "tiny.json").read_text())
    assert [r["model"] for r in doc["models"]] == ["tiny-nr"] and doc["models"][0]["n"] == 21


@pytest.mark.parametrize("args, message", [
    (["--manifest", "{tmp}/nowhere"], "no manifest"),
    (["--manifest", "{set}", "--models", "psnr", "no-such-model"], "unknown model 'no-such-model'"),
    (["--manifest", "{set}", "--models", "psnr", "--label", "mos"], "unknown label 'mos'"),
])
def test_dqa_eval_usage_errors(image_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                               args: list[str], message: str) -> None:
    argv = [a.format(tmp=tmp_path, set=image_set) for a in args]
    assert main(["-q", "eval", *argv, "--out", str(tmp_path / "eval")]) == 2
    assert message in capsys.readouterr().err
    assert not (image_set / "scores").exists()


def test_manifest_validation(image_set: Path) -> None:
    m = read_manifest(image_set)
    assert m.suite == "tiny" and m.labels == ["fused", "vmaf", "true_4k"] and m.binary_labels() == ["true_4k"]
    assert m.items[1].path.is_absolute() and m.items[1].path.is_file() and m.items[0].ref is None
    assert len(m.select("test")) == 15 and len(m.select("all")) == 22
    with pytest.raises(ValueError, match="unknown split"):
        m.select("nope")
    (image_set / "manifest.csv").write_text("path,ref,content\nx.png,,c\n")
    with pytest.raises(ValueError, match="lacks the column"):
        read_manifest(image_set)
    (image_set / "manifest.csv").write_text("path,ref,content,kind,level,labels,split\nx.png,,c,pristine,low,{},test\n")
    with pytest.raises(ValueError, match="line 2: level must be an integer"):
        read_manifest(image_set)

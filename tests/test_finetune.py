"""`dqa finetune`: a tiny network learns a synthetic labelled set; bad rows are reported and the rest trains."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from common.cli import main
from common.data.degrade import degrade
from common.quality import QualityNet
from common.registry import load_model
from tests.test_data_degrade import SAMPLES


def _write_set(folder: Path, images: list[np.ndarray], name: str) -> Path:
    """Each image blurred or noised at severities 0-5, labelled ``100 - 16 * severity``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["path,mos"]
    for c, img in enumerate(images):
        for kind in ("gaussian_blur", "gaussian_noise"):
            for lv in range(6):
                out = img if lv == 0 else degrade(img, kind, level=lv, seed=c)
                rel = f"img/{name}{c}_{kind}_{lv}.png"
                (folder / rel).parent.mkdir(exist_ok=True)
                Image.fromarray(out).save(folder / rel)
                lines.append(f"{rel},{100 - 16 * lv}")
    csv = folder / f"{name}.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.pt"
    torch.save(QualityNet(width=0.125, hidden=32).export({"note": "random init for tests"}), path)
    return path


def test_finetune_raises_held_out_srcc_and_reports_bad_rows(tmp_path: Path, tiny: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    train_csv = _write_set(tmp_path, list(SAMPLES[:2]), "train")
    with open(train_csv, "a") as f:
        f.write("img/not_there.png,55\nimg/train0_gaussian_blur_1.png,good\n")
    val_csv = _write_set(tmp_path, [np.ascontiguousarray(data.rocket()[100:356, 300:556])], "val")
    out = tmp_path / "my.pt"
    code = main(["-q", "finetune", "--suite", "iqa", "--weights", str(tiny), "--data", str(train_csv),
                 "--val", str(val_csv), "--out", str(out), "--epochs", "6", "--batch", "6", "--lr", "3e-3",
                 "--patience", "6", "--device", "cpu", "--workers", "0"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "not_there.png" in text and "good" in text and "2 rows left out" in text
    saved = torch.load(out, weights_only=True)["config"]
    before, after = saved["val_srcc_before"], saved["val_srcc"]
    assert saved["train_rows"] == 24 and saved["val_rows"] == 12 and after > before + 0.3, (before, after)
    model = load_model("iqa", device="cpu", weights=str(out))  # `dqa score --weights my.pt` loads it
    scores = [model.score(tmp_path / f"img/val0_gaussian_blur_{lv}.png").score for lv in (0, 5)]
    assert scores[0] > scores[1]


def test_finetune_refuses_models_without_a_network(tmp_path: Path) -> None:
    csv = _write_set(tmp_path, [SAMPLES[0]], "t")
    assert main(["-q", "finetune", "--suite", "niqe", "--data", str(csv), "--out", str(tmp_path / "x.pt")]) == 2


def test_finetune_without_usable_rows_says_why(tmp_path: Path, tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("path,mos\nmissing.png,3\n")
    assert main(["-q", "finetune", "--suite", "iqa", "--weights", str(tiny), "--data", str(csv),
                 "--out", str(tmp_path / "x.pt")]) == 2
    assert "missing.png" in capsys.readouterr().err


def test_frozen_backbone_keeps_its_weights(tmp_path: Path, tiny: Path) -> None:
    csv = _write_set(tmp_path, [SAMPLES[1]], "f")
    out = tmp_path / "head.pt"
    assert main(["-q", "finetune", "--suite", "iqa", "--weights", str(tiny), "--data", str(csv), "--out", str(out),
                 "--epochs", "1", "--freeze-backbone", "--device", "cpu", "--workers", "0"]) == 0
    a, b = torch.load(tiny, weights_only=True), torch.load(out, weights_only=True)
    assert all(torch.equal(a["backbone"][k], b["backbone"][k]) for k in a["backbone"])
    assert not all(torch.equal(a["quality"][k], b["quality"][k]) for k in a["quality"])
    assert b["config"]["finetuned_from"]["model"] == "iqa"
    n_train, n_val = b["config"]["train_rows"], b["config"]["val_rows"]  # the split hashes the temp path's rows
    assert n_train + n_val == 12 or (n_train + n_val == 11 and n_train % 8 == 0)  # or a last batch of one left out


def test_a_bitstream_video_model_finetunes_on_clips(tmp_path: Path) -> None:
    """A video network that reads bitstream cues gets them from each labelled clip (``Model.begin``)."""
    from common.train.datasets import LabelRow
    from common.train.finetune import LabelledMedia
    from suites.video.model import VideoNet
    from tests import mediagen

    start = tmp_path / "bits.pt"
    torch.save(VideoNet(width=0.125, hidden=16, content=False, cues=True, exposure=False, bitstream=True).export(),
               start)
    lines = ["path,mos"]
    for i, crf in enumerate((10, 25, 40, 51) * 2):
        mediagen.make_clip(tmp_path / f"c{i}.mp4", n_frames=4, size=(96, 64), options={"crf": str(crf)})
        lines.append(f"c{i}.mp4,{100 - crf}")
    (tmp_path / "clips.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "tuned.pt"
    data = ["--data", str(tmp_path / "clips.csv"), "--val", str(tmp_path / "clips.csv")]
    assert main(["-q", "finetune", "--suite", "pgc", "--weights", str(start), *data, "--out", str(out), "--epochs", "1",
                 "--batch", "7", "--freeze-backbone", "--device", "cpu", "--workers", "0"]) == 0  # 8 rows: 7 + 1
    assert torch.load(out, weights_only=True)["config"]["train_rows"] == 7  # the batch of one is left out
    model = load_model("pgc", device="cpu", weights=str(out))
    assert model.net.bitstream and model.score(tmp_path / "c0.mp4").ok
    rows = [(LabelRow(tmp_path / "c0.mp4", 90.0), [0])]
    sample = LabelledMedia(model, rows, (0, 100), train=True)[0]
    assert sample["views"][1][:2].tolist() == [1, 1]  # known, H.264: each row carries its file's bitstream cues

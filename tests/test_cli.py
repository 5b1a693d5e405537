"""The dqa command line: score formats per the contract, bad files, resume after a kill, list, bench, exit codes."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from common.cli import main
from tests import mediagen

ROOT = Path(__file__).resolve().parent.parent
RESULT_FIELDS = {"path", "score", "frames", "pooling", "extras", "error", "model", "weights_sha256"}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_ssim_on_video_pairs_in_three_formats(video_pairs: tuple[Path, Path], tmp_path: Path) -> None:
    ref, dist = video_pairs
    assert main(["-q", "score", "--suite", "ssim", "--ref", str(ref), str(dist), "--out", str(tmp_path / "s.jsonl")]) == 0
    rows = {Path(r["path"]).name: r for r in _jsonl(tmp_path / "s.jsonl")}
    assert set(rows) == {"a_crf20.mp4", "a_crf45.mp4", "b_crf35.mp4"}
    for r in rows.values():
        assert set(r) == RESULT_FIELDS and r["error"] is None and r["model"] == "ssim"
        assert r["extras"]["ref"].endswith(("a.mp4", "b.mp4"))
        assert [f["frame"] for f in r["frames"]] == list(range(len(r["frames"])))
        assert r["score"] == pytest.approx(np.mean([f["score"] for f in r["frames"]]))
        assert r["frames"][1]["time"] == pytest.approx(1 / 30, abs=1e-3)
    assert len(rows["a_crf20.mp4"]["frames"]) == 12 and len(rows["b_crf35.mp4"]["frames"]) == 10
    assert rows["a_crf20.mp4"]["score"] > rows["a_crf45.mp4"]["score"]

    assert main(["-q", "score", "--suite", "ssim", "--ref", str(ref), str(dist), "--out", str(tmp_path / "s.json")]) == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["model"] == "ssim" and len(doc["files"]) == 3
    for f in doc["files"]:
        assert set(f["frames"][0]) >= {"frameNum", "metrics"} and "ssim" in f["frames"][0]["metrics"]
        pooled = f["pooled_metrics"]["ssim"]
        assert set(pooled) == {"min", "max", "mean", "harmonic_mean"}
        assert pooled["min"] <= pooled["harmonic_mean"] <= pooled["mean"] <= pooled["max"]
        assert f["score"] == pytest.approx(rows[Path(f["path"]).name]["score"])

    assert main(["-q", "score", "--suite", "ssim", "--ref", str(ref), str(dist), "-o", str(tmp_path / "s.txt"), "-f", "csv"]) == 0
    with open(tmp_path / "s.txt", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3 and {"path", "score", "frames", "mean", "harmonic_mean", "min", "p5", "max", "error"} <= set(table[0])
    assert float(table[0]["score"]) == pytest.approx(rows[Path(table[0]["path"]).name]["score"], abs=1e-9)


def test_bad_folder_every_file_gets_a_row(bad_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "bad.jsonl"
    assert main(["-q", "score", "--suite", "tiny-nr", str(bad_copy), "--out", str(out)]) == 1
    rows = {Path(r["path"]).name: r for r in _jsonl(out)}
    assert set(rows) == {"zero.mp4", "truncated.mp4", "notes.jpg", "one.png", "deep.png", "cmyk.jpg",
                         "phone.mp4", "ten_bit.mkv"}
    for name in ("zero.mp4", "truncated.mp4", "notes.jpg", "one.png"):
        assert rows[name]["error"] and rows[name]["score"] is None, name
    assert "notes.jpg" in rows["notes.jpg"]["error"] and "zero.mp4" in rows["zero.mp4"]["error"]
    for name in ("deep.png", "cmyk.jpg", "phone.mp4", "ten_bit.mkv"):
        assert rows[name]["error"] is None and 0 <= rows[name]["score"] <= 100, (name, rows[name]["error"])
    assert len(rows["phone.mp4"]["frames"]) == 8


def test_bad_folder_with_a_full_reference_metric(bad_copy: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref"
    shutil.copytree(bad_copy, ref)
    out = tmp_path / "psnr.csv"
    assert main(["-q", "score", "--suite", "psnr", "--ref", str(ref), str(bad_copy), "--out", str(out)]) == 1
    with open(out, newline="") as f:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    assert len(rows) == 8
    assert rows["one.png"]["error"] == "" and float(rows["one.png"]["score"]) == 100.0
    assert rows["zero.mp4"]["error"] and rows["notes.jpg"]["error"]


def _paths(out: Path, fmt: str) -> list[str]:
    """Paths of the rows in an output file; a document caught mid-write counts as none."""
    if not out.exists():
        return []
    if fmt == "jsonl":
        return [r["path"] for r in _jsonl(out)]
    if fmt == "csv":
        with open(out, newline="") as f:
            return [r["path"] for r in csv.DictReader(f)]
    try:
        return [f["path"] for f in json.loads(out.read_text())["files"]]
    except json.JSONDecodeError:
        return []


def test_resume_after_kill_scores_every_file_once(tmp_path: Path) -> None:
    ref, dist = tmp_path / "ref", tmp_path / "dist"
    ref.mkdir()
    dist.mkdir()
    n = 10
    mediagen.make_clip(ref / "src.mp4", n_frames=40, size=(320, 240))
    for i in range(n):
        shutil.copy(ref / "src.mp4", dist / f"src_{i:02d}.mp4")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for fmt in ("jsonl", "csv", "json"):
        out = tmp_path / f"scores.{fmt}"
        cmd = [sys.executable, "-m", "common.cli", "-q", "score", "--suite", "ssim", "--workers", "1",
               "--ref", str(ref), str(dist), "--out", str(out)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and len(_paths(out, fmt)) < 2:
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed; give it more work"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 2 <= len(_paths(out, fmt)) < n, fmt
        assert subprocess.run(cmd + ["--resume"], env=env, timeout=300).returncode == 0
        assert sorted(_paths(out, fmt)) == sorted(str(p) for p in dist.glob("*.mp4")), fmt


def test_resume_retries_errors_and_refuses_another_model(tmp_path: Path) -> None:
    samples = ROOT / "common" / "samples"
    dist = tmp_path / "dist"
    shutil.copytree(samples / "dist", dist)
    out = tmp_path / "s.json"
    ref = tmp_path / "ref"
    ref.mkdir()
    shutil.copy(samples / "ref" / "pan.mp4", ref)
    assert main(["-q", "score", "--suite", "psnr", "--ref", str(ref), str(dist), "-o", str(out)]) == 1
    assert sum(f["error"] is None for f in json.loads(out.read_text())["files"]) == 1
    shutil.copytree(samples / "ref", ref, dirs_exist_ok=True)
    assert main(["-q", "score", "--suite", "psnr", "--ref", str(ref), str(dist), "-o", str(out), "--resume"]) == 0
    files = json.loads(out.read_text())["files"]
    assert len(files) == 4 and all(f["error"] is None for f in files)
    assert main(["-q", "score", "--suite", "ssim", "--ref", str(ref), str(dist), "-o", str(out), "--resume"]) == 2


def test_resume_drops_a_torn_last_line(tmp_path: Path) -> None:
    samples = ROOT / "common" / "samples"
    out = tmp_path / "s.jsonl"
    assert main(["-q", "score", "--suite", "psnr", "--ref", str(samples / "ref"), str(samples / "dist"), "-o", str(out)]) == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]) + lines[2][:15])
    assert main(["-q", "score", "--suite", "psnr", "--ref", str(samples / "ref"), str(samples / "dist"), "-o", str(out), "--resume"]) == 0
    assert sorted(r["path"] for r in _jsonl(out)) == sorted(json.loads(x)["path"] for x in lines)


def test_score_bundled_samples_without_paths(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--suite", "ssim"]) == 0
    table = capsys.readouterr().out
    for name in ("astronaut.jpg", "coffee_blur.png", "chelsea_noise.webp", "pan_crf40.mp4", "4 files, 0 failed"):
        assert name in table


def test_raw_yuv_needs_and_uses_size(tmp_path: Path) -> None:
    mediagen.make_raw_yuv(tmp_path / "ref.yuv", 3, 64, 48, "yuv420p")
    out = tmp_path / "r.jsonl"
    assert main(["-q", "score", "--suite", "psnr", "--ref", str(tmp_path / "ref.yuv"), str(tmp_path / "ref.yuv"), "-o", str(out)]) == 1
    assert "--size" in _jsonl(out)[0]["error"]
    assert main(["-q", "score", "--suite", "psnr", "--size", "64x48", "--ref", str(tmp_path / "ref.yuv"),
                 str(tmp_path / "ref.yuv"), "-o", str(out)]) == 0
    row = _jsonl(out)[0]
    assert len(row["frames"]) == 3 and row["score"] == 100.0


@pytest.mark.parametrize("argv, message", [
    (["score", "--suite", "nope", "x"], "unknown model"),
    (["score", "--suite", "ssim", "common"], "--ref"),
    (["score", "--suite", "psnr", "--sampler", "every:x", "--ref", "a", "b"], "every"),
    (["score", "--suite", "psnr", "--pooling", "min", "--resume", "--ref", "a", "b"], "resume"),
    (["score", "--suite", "psnr", "--format", "csv", "--out", "-"], "needs a file"),
    (["score", "--suite", "psnr", "--out", "common"], "is a folder"),
])
def test_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_list_shows_models_and_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("psnr", "ssim", "ms-ssim", "gmsd", "vmaf"):
        assert f"\n{name} " in out
    assert "FR" in out and "lower" in out and "none needed" in out


def test_bench_prints_ratios(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = tmp_path / "c.mp4"
    mediagen.make_clip(clip, n_frames=30, size=(320, 240))
    assert main(["bench", "--suite", "psnr", str(clip), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "end-to-end / decode" in out and re.search(r"frames scored\s+30\n", out)


def test_console_script_help() -> None:
    exe = shutil.which("dqa")
    cmd = [exe] if exe else [sys.executable, "-m", "common.cli"]
    res = subprocess.run(cmd + ["score", "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "examples:" in res.stdout and "--resume" in res.stdout

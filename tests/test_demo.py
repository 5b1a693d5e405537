"""The web demo: its pieces without a browser, then the real app driven by Playwright in Debian's Chromium."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from common.maps import quality_map, tile_starts
from common.media import load_image
from common.registry import get_spec, list_models, load_model
from tests.conftest import SAMPLES

gradio = pytest.importorskip("gradio")
from apps.app import Scorer, tab_groups  # noqa: E402  (needs gradio's extra installed)
from apps.widgets import (UploadError, band, check_upload, colormap, heat_overlay, paired_sample, samples,  # noqa: E402
                          user_message)

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
CLIP = SAMPLES / "dist" / "pan_crf40.mp4"
ROOT = Path(__file__).resolve().parent.parent


def no_progress(*args: object, **kwargs: object) -> None:
    return None


# --- pieces ----------------------------------------------------------------------------------------------------

def test_every_registered_model_is_in_a_tab() -> None:
    in_tabs = [s.name for _, _, _, specs in tab_groups() for s in specs]
    assert sorted(in_tabs) == sorted(s.name for s in list_models())
    titles = {key: title for key, title, _, _ in tab_groups()}
    assert titles["video"] == "Video" and titles["classic"] == "Classic metrics"
    assert list(titles)[-2:] == ["common", "classic"]


def test_band_words_follow_the_acr_scale() -> None:
    ugc, ssim = get_spec("ugc"), get_spec("ssim")
    assert [band(s, ugc) for s in (5, 25, 45, 65, 95)] == ["bad", "poor", "fair", "good", "excellent"]
    assert band(None, ugc) == "" and band(float("nan"), ugc) == ""
    assert "higher is better" in band(0.9, ssim) and "lower is better" in band(0.1, get_spec("gmsd"))


def test_samples_pair_and_uploads_are_checked(tmp_path: Path) -> None:
    names = samples()
    assert "dist/pan_crf40.mp4" in names and all(p.is_file() for p in names.values())
    assert paired_sample("dist/pan_crf40.mp4") == "ref/pan.mp4"
    assert paired_sample("dist/astronaut.jpg") == "ref/astronaut.png"
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * 2048)
    with pytest.raises(UploadError, match="over this demo's limit"):
        check_upload(big, 1024)
    with pytest.raises(UploadError, match="unsupported file type"):
        check_upload(tmp_path / "notes.txt", 1024)
    assert check_upload(big, 4096) == big


def test_messages_hide_server_paths() -> None:
    text = "/tmp/gradio/abc/clip.mp4: cannot read video: [Errno 1094995529] Invalid data in /srv/x/y.mp4"
    msg = user_message(text, {"/tmp/gradio/abc/clip.mp4": "clip.mp4"})
    assert msg == "clip.mp4: cannot read video: Invalid data in y.mp4"


def test_colormap_runs_red_to_green() -> None:
    rgb = colormap(np.array([[0.0, 0.5, 1.0]]))[0]
    assert rgb[0, 0] > rgb[0, 1] and rgb[2, 1] > rgb[2, 0]  # worst is red, best is green
    over = heat_overlay(np.zeros((8, 8, 3), np.uint8), np.ones((4, 4)))
    assert over.shape == (4, 4, 3) and over[..., 1].min() > 0


def test_tiles_cover_the_image() -> None:
    for length, tile in ((100, 100), (384, 64), (1080, 360), (5000, 224)):
        starts = tile_starts(length, tile)
        assert starts[0] == 0 and starts[-1] + tile == max(length, tile)
        assert len(starts) <= max(10, length // tile + 1)
        assert all(b - a <= tile for a, b in zip(starts, starts[1:]))  # no gaps


def test_error_map_finds_the_damaged_half() -> None:
    ref = load_image(SAMPLES / "ref" / "astronaut.png")
    dist = ref.copy()
    w = ref.shape[1]
    noise = np.random.default_rng(0).normal(0, 25, dist[:, : w // 2].shape)
    dist[:, : w // 2] = np.clip(dist[:, : w // 2] + noise, 0, 255).astype(np.uint8)
    qmap = quality_map(load_model("psnr", device="cpu"), dist, ref)
    good = qmap.goodness()
    assert good.shape == ref.shape[:2] and qmap.tiles > 4
    assert good[:, : w // 4].mean() < good[:, -w // 4:].mean() - 0.1
    with pytest.raises(ValueError, match="needs the reference"):
        quality_map(load_model("psnr", device="cpu"), dist)
    with pytest.raises(ValueError, match="no quality map"):
        quality_map(load_model("niqe", device="cpu"), dist)


def test_scorer_reports_bad_input_in_words(tmp_path: Path) -> None:
    scorer = Scorer(1 << 20, tmp_path)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 50)
    out = scorer("pgc", str(bad), None, None, None, no_progress)
    assert set(out) == {"error"} and out["error"].startswith("broken.mp4") and str(tmp_path) not in out["error"]
    assert "pick a bundled sample" in scorer("pgc", None, None, None, None, no_progress)["error"]
    assert "unknown sample" in scorer("pgc", None, "../../etc/passwd", None, None, no_progress)["error"]
    assert "scores video files" in scorer("vmaf", None, "dist/astronaut.jpg", None, "ref/astronaut.png",
                                          no_progress)["error"]


def test_scorer_gives_map_for_images_and_frames_for_video(tmp_path: Path) -> None:
    scorer = Scorer(1 << 24, tmp_path)
    image = scorer("ssim", None, "dist/astronaut.jpg", None, "ref/astronaut.png", no_progress)
    assert "error" not in image and 0 < image["score"] < 1 and image["map"].ndim == 3
    assert "higher is better" in image["band"] and Path(image["json"]).is_file()
    assert image["map_label"].startswith("Error map against ref/astronaut.png")
    seen: list[float] = []
    video = scorer("pgc-fr", None, "dist/pan_crf40.mp4", None, "ref/pan.mp4", lambda f, desc="": seen.append(f))
    assert "error" not in video and 0 <= video["score"] <= 100 and video["band"]
    assert len(video["plot"]["score"]) == 8 and [c for _, c in video["frames"]][0].startswith("worst")
    assert seen[0] == 0 and seen[-1] == pytest.approx(1.0)
    assert '"frameNum"' in Path(video["json"]).read_text()


# --- the real app in a real browser ----------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt install chromium; .ci/run does)")
    pytest.importorskip("playwright")
    port = _free_port()
    log = open(Path(tempfile.mkdtemp()) / "demo.log", "w+")
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "apps", "--port", str(port), "--max-upload-mb", "5"], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    pytest.fail(f"the demo did not start:\n{log.read()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_server_files_stay_private(demo_url: str) -> None:
    for path in ("/etc/passwd", str(ROOT / "README.md"), str(ROOT / "weights" / "manifest.json")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{demo_url}gradio_api/file={path}", timeout=10)
        assert err.value.code in (403, 404)


@pytest.fixture()
def page(demo_url: str, tmp_path: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                                                   viewport={"width": 1280, "height": 1000})
        try:
            pg = ctx.new_page()
            pg.goto(demo_url)
            pg.wait_for_selector("#video-go", timeout=60_000)
            yield pg
        finally:
            ctx.close()
            shutil.rmtree(profile, ignore_errors=True)


def _score(page: object, tab: str, title: str, upload: Path) -> str:
    """Open a tab, upload a file, press Score and return the status text once it answers."""
    page.get_by_role("tab", name=title).click()
    page.locator(f"#{tab}-media input[type=file]").set_input_files(str(upload))
    page.locator(f"#{tab}-media").get_by_label(upload.name).wait_for(timeout=30_000)  # the upload has landed
    page.click(f"#{tab}-go")
    page.wait_for_function(f"() => /Scored|Could not/.test(document.querySelector('#{tab}-status').innerText)",
                           timeout=120_000)
    text = page.locator(f"#{tab}-status").inner_text()  # may still hold the fading progress overlay's text
    return re.search(r"(Scored\.|Could not score:.*)", text, re.S).group(1).strip()


def test_browser_scores_an_uploaded_clip(page: object, tmp_path: Path) -> None:
    status = _score(page, "video", "Video", CLIP)
    assert status.startswith("Scored"), status
    score = float(page.locator("#video-score input").input_value())
    assert 0 <= score <= 100
    assert page.locator("#video-band input, #video-band textarea").first.input_value() in (
        "bad", "poor", "fair", "good", "excellent")
    page.wait_for_selector("#video-plot canvas, #video-plot svg", timeout=30_000)
    assert page.locator("#video-frames img").count() == 2
    assert page.locator("#video-json").is_visible()
    page.screenshot(path=str(tmp_path / "video-scored.png"), full_page=True)
    assert (tmp_path / "video-scored.png").stat().st_size > 10_000


def test_browser_reports_a_corrupt_file(page: object, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(CLIP.read_bytes()[:300] + b"\0" * 2000)
    status = _score(page, "video", "Video", bad)
    assert re.match(r"Could not score: corrupt\.mp4: ", status), status
    assert "Traceback" not in page.content() and str(tmp_path) not in status
    page.screenshot(path=str(tmp_path / "video-corrupt.png"), full_page=True)


def test_browser_shows_an_image_quality_map(page: object, tmp_path: Path) -> None:
    status = _score(page, "common", "General", SAMPLES / "dist" / "coffee_blur.png")
    assert status.startswith("Scored"), status
    page.wait_for_selector("#common-map img", timeout=30_000)
    page.screenshot(path=str(tmp_path / "image-map.png"), full_page=True)


def test_cli_demo_checks_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    from common.cli import main

    assert main(["demo", "--port", "70000"]) == 2
    assert main(["demo", "--max-upload-mb", "0"]) == 2
    assert "--max-upload-mb must be positive" in capsys.readouterr().err

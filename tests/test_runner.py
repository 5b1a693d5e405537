"""The runner: batching across files, bounded queue, pairing by name, per-file errors, arrays."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from common.media import EveryNth, UniformK, UniformKeyframes, read_media
from common.model import Model
from common.registry import load_model
from common.runner import Job, ScoreOptions, _ByteQueue, build_jobs, run_jobs, score_folder
from tests import mediagen
from tests.conftest import TinyNR


def test_one_model_call_serves_frames_of_several_files(tmp_path: Path, tiny_model: TinyNR) -> None:
    for i in range(6):
        mediagen.make_png_alpha(tmp_path / f"img{i}.png")
    for i in range(3):
        mediagen.make_clip(tmp_path / f"clip{i}.mp4", n_frames=5, size=(96, 64))
    results = score_folder(tiny_model, [tmp_path], progress=False)
    assert len(results) == 9 and all(r.ok for r in results)
    assert sum(TinyNR.calls) == 6 + 3 * 5
    assert max(TinyNR.calls) > 5, f"no batch mixed files: {TinyNR.calls}"
    clip = next(r for r in results if r.path.endswith("clip0.mp4"))
    assert [f.frame for f in clip.frames] == [0, 1, 2, 3, 4]
    assert clip.frames[1].time == pytest.approx(1 / 30, abs=1e-3)
    assert clip.score == pytest.approx(np.mean([f.score for f in clip.frames]))


def test_sampler_and_pooling_options(tmp_path: Path, tiny_model: TinyNR) -> None:
    mediagen.make_clip(tmp_path / "c.mp4", n_frames=20, size=(96, 64))
    r = score_folder(tiny_model, [tmp_path], progress=False, sampler=EveryNth(5), pooling="min")[0]
    assert [f.frame for f in r.frames] == [0, 5, 10, 15]
    assert r.pooling == "min" and r.score == pytest.approx(min(f.score for f in r.frames))
    with pytest.raises(ValueError, match="pooling"):
        score_folder(tiny_model, [tmp_path], progress=False, pooling="median-ish")


def test_byte_queue_blocks_producers_over_budget() -> None:
    q = _ByteQueue(budget=100)
    q.put(("a",), 80)
    done = threading.Event()

    def producer() -> None:
        q.put(("b",), 80)
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    time.sleep(0.2)
    assert not done.is_set(), "a producer must wait while the queue is over budget"
    assert q.get(timeout=1) == ("a",)
    assert done.wait(2)
    assert q.get(timeout=1) == ("b",)
    assert q.get(timeout=0.01) is None


def test_workers_stop_when_the_consumer_fails(tmp_path: Path, tiny_model: TinyNR) -> None:
    mediagen.make_clip(tmp_path / "a.mp4", n_frames=40, size=(96, 64))
    mediagen.make_clip(tmp_path / "b.mp4", n_frames=40, size=(96, 64))

    class FailingWriter:
        done: set[str] = set()

        def write(self, result: object) -> None:
            raise OSError("disk full")

        def close(self) -> None:
            pass

    before = threading.active_count()
    jobs = build_jobs([tmp_path])
    with pytest.raises(OSError, match="disk full"):
        run_jobs(tiny_model, jobs, ScoreOptions(progress=False), FailingWriter())
    deadline = time.time() + 10
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before, "decode workers must not outlive a failed run"


def _touch(root: Path, *names: str) -> None:
    for p in names:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).touch()


def test_pairing_by_path_name_stem_and_prefix(tmp_path: Path) -> None:
    ref, dist = tmp_path / "ref", tmp_path / "dist"
    _touch(ref, "sub/x.png", "y.y4m", "clip.mp4", "clip_hd.mp4")
    _touch(dist, "sub/x.png", "y.mp4", "clip_hd_crf30.mp4", "clip-720p.mp4", "other.png")
    jobs = {Path(j.path).relative_to(dist).as_posix(): j for j in build_jobs([dist], ref, "FR")}
    assert jobs["sub/x.png"].ref == ref / "sub/x.png"
    assert jobs["y.mp4"].ref == ref / "y.y4m"
    assert jobs["clip_hd_crf30.mp4"].ref == ref / "clip_hd.mp4"
    assert jobs["clip-720p.mp4"].ref == ref / "clip.mp4"
    assert jobs["other.png"].ref is None and "no reference found" in jobs["other.png"].error
    single = build_jobs([dist / "y.mp4"], ref / "y.y4m", "FR")
    assert [j.ref for j in single] == [ref / "y.y4m"]


def test_pairing_tells_same_names_apart_by_folder(tmp_path: Path) -> None:
    ref, dist = tmp_path / "ref", tmp_path / "dist"
    _touch(ref, "x/clip.png", "y/clip.png", "a/t.png", "b/t.png")
    _touch(dist, "x/clip.png", "y/clip.png", "c/t.png")
    jobs = {Path(j.path).relative_to(dist).as_posix(): j for j in build_jobs([dist / "x", dist / "y", dist / "c"], ref, "FR")}
    assert jobs["x/clip.png"].ref == ref / "x/clip.png"
    assert jobs["y/clip.png"].ref == ref / "y/clip.png"
    assert jobs["c/t.png"].ref is None and "ambiguous" in jobs["c/t.png"].error


def test_references_are_not_scored_against_themselves(tmp_path: Path) -> None:
    _touch(tmp_path, "src.mp4", "src_crf30.mp4", "enc/src_crf40.mp4")
    assert {Path(j.path).name for j in build_jobs([tmp_path], tmp_path / "src.mp4", "FR")} == {"src_crf30.mp4", "src_crf40.mp4"}
    jobs = build_jobs([tmp_path / "enc"], tmp_path, "FR")
    assert [(Path(j.path).name, j.ref) for j in jobs] == [("src_crf40.mp4", tmp_path / "src.mp4")]


def test_fr_pairs_share_frame_indices_and_mixed_kinds_share_luma(tmp_path: Path) -> None:
    mediagen.make_clip(tmp_path / "ref.mp4", n_frames=31, size=(96, 64))
    mediagen.make_clip(tmp_path / "dist.mp4", n_frames=30, size=(96, 64))
    psnr = load_model("psnr", device="cpu")
    every = {f.frame: f.score for f in psnr.score(tmp_path / "dist.mp4", ref=tmp_path / "ref.mp4").frames}
    r = psnr.score(tmp_path / "dist.mp4", ref=tmp_path / "ref.mp4", sampler=UniformK(4))
    assert len(r.frames) == 4 and all(f.score == pytest.approx(every[f.frame]) for f in r.frames)
    assert "30 frames and the reference 31" in r.extras["unpaired_frames"]
    frame = next(read_media(tmp_path / "ref.mp4")).data
    r = psnr.score(tmp_path / "ref.mp4", ref=frame, sampler=EveryNth(10))
    assert [f.frame for f in r.frames] == [0, 10, 20, 30] and "BT.601" in r.extras["luma"]
    assert r.frames[0].score == 100.0 and r.frames[1].score < 100.0


def test_fr_size_mismatch_and_resize_ref(tmp_path: Path) -> None:
    mediagen.make_clip(tmp_path / "ref.mp4", n_frames=4, size=(160, 96))
    mediagen.make_clip(tmp_path / "small.mp4", n_frames=4, size=(80, 48))
    model = load_model("psnr", device="cpu")
    job = Job(0, str(tmp_path / "small.mp4"), tmp_path / "small.mp4", tmp_path / "ref.mp4")
    r = run_jobs(model, [job], ScoreOptions(progress=False))[0]
    assert r.error and "80x48" in r.error and "--resize-ref" in r.error
    r = run_jobs(model, [job], ScoreOptions(progress=False, resize_ref=True))[0]
    assert r.ok and len(r.frames) == 4 and 10 < r.score < 100


def test_fr_frame_count_mismatch_is_noted(tmp_path: Path) -> None:
    mediagen.make_clip(tmp_path / "ref.mp4", n_frames=8, size=(96, 64))
    mediagen.make_clip(tmp_path / "dist.mp4", n_frames=6, size=(96, 64))
    r = load_model("psnr", device="cpu").score(tmp_path / "dist.mp4", ref=tmp_path / "ref.mp4")
    assert r.ok and len(r.frames) == 6
    assert "6 frames and the reference 8" in r.extras["unpaired_frames"]


def test_arrays_and_model_score() -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:80]
    img = np.stack([xx * 3, yy * 3, (xx + yy) * 2], -1).astype(np.uint8)
    noisy = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
    ssim = load_model("ssim", device="cpu")
    assert ssim.score(img, ref=img).score == pytest.approx(1.0, abs=1e-5)
    assert ssim.score(noisy, ref=img).score < 0.95
    clip = np.stack([img] * 3)
    r = ssim.score(clip, ref=clip)
    assert len(r.frames) == 3 and r.path == "<array>"


def test_error_in_one_file_does_not_stop_the_others(tmp_path: Path, tiny_model: TinyNR) -> None:
    mediagen.make_png_alpha(tmp_path / "good.png")
    mediagen.make_1x1_png(tmp_path / "tiny.png")
    mediagen.make_zero_byte(tmp_path / "empty.png")
    results = {Path(r.path).name: r for r in score_folder(tiny_model, [tmp_path], progress=False)}
    assert results["good.png"].ok
    assert "too small" in results["tiny.png"].error
    assert "empty.png" in results["empty.png"].error


def test_each_video_is_probed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import common.media.video as video
    import common.runner as runner

    mediagen.make_clip(tmp_path / "ref.mkv", n_frames=6, size=(96, 64))
    mediagen.make_clip(tmp_path / "dist.mkv", n_frames=6, size=(96, 64))
    calls: list[str] = []
    real = video.probe_video

    def counting(path, raw=None):  # type: ignore[no-untyped-def]
        calls.append(Path(path).name)
        return real(path, raw)

    monkeypatch.setattr(video, "probe_video", counting)
    monkeypatch.setattr(runner, "probe_video", counting)
    r = load_model("psnr", device="cpu").score(tmp_path / "dist.mkv", ref=tmp_path / "ref.mkv", sampler=UniformK(3))
    assert r.ok and len(r.frames) == 3
    assert sorted(calls) == ["dist.mkv", "ref.mkv"]


def test_a_file_ends_before_its_decoder_shuts_down(tmp_path: Path, tiny_model: TinyNR,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the last planned frame is queued the file's end is reported at once, so its last batch runs while the
    decoder is still being closed; the decoder is closed all the same."""
    import common.runner as runner

    mediagen.make_clip(tmp_path / "c.mp4", n_frames=12, size=(96, 64))
    events: list[str] = []
    real_frames, real_put = runner._frames, _ByteQueue.put

    def frames(*args: Any, **kwargs: Any) -> Any:
        try:
            yield from real_frames(*args, **kwargs)
        finally:
            events.append("decoder closed")

    def put(self: _ByteQueue, item: tuple, nbytes: int = 0) -> None:
        events.append(item[0])
        real_put(self, item, nbytes)

    monkeypatch.setattr(runner, "_frames", frames)
    monkeypatch.setattr(_ByteQueue, "put", put)
    r = score_folder(tiny_model, [tmp_path], progress=False, sampler=UniformK(4))[0]
    assert r.ok and len(r.frames) == 4
    for _ in range(200):  # the decode worker closes it after the run has its result
        if "decoder closed" in events:
            break
        time.sleep(0.01)
    assert events == ["frame"] * 4 + ["end", "decoder closed"]


class PrevFrame(Model):
    """Scores each sampled frame by the index of the frame seen just before it (-1: none), through ``observe``."""

    name, mode, context_frames = "prev-frame", "NR", 1

    def observe(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> None:
        state["prev"] = mediagen.frame_code(frame)

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> torch.Tensor:
        prev, state["prev"] = state.get("prev", -1), mediagen.frame_code(frame)
        return torch.tensor([float(prev)])

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return batch[:, 0]


def test_context_frames_are_observed_not_scored(tmp_path: Path) -> None:
    clip = mediagen.make_clip(tmp_path / "c.mp4", n_frames=30)
    r = PrevFrame().score(clip, sampler=UniformK(4))
    assert r.ok and len(r.frames) == 4 and all(f.score == f.frame - 1 for f in r.frames)
    r = PrevFrame().score(clip, sampler=EveryNth(10))  # frame 0 has no context
    assert [(f.frame, f.score) for f in r.frames] == [(0, -1.0), (10, 9.0), (20, 19.0)]
    gop = mediagen.make_clip(tmp_path / "gop.mp4", n_frames=40, gop=10)  # keyframes 0, 10, 20, 30
    r = PrevFrame().score(gop, sampler=UniformKeyframes(4))  # the frame after each keyframe, the keyframe as context
    assert [(f.frame, f.score) for f in r.frames] == [(1, 0.0), (11, 10.0), (21, 20.0), (31, 30.0)]
    image = PrevFrame().score(mediagen.image_content(64, 48))
    assert image.ok and image.frames[0].score == -1.0


class FileTagged(Model):
    """Pairs each frame's mean with a per-file tag set in ``begin``; scores tag * 1000 + mean (tuple items)."""

    name, mode = "file-tagged", "NR"
    calls: list[int] = []

    def begin(self, media: Path | np.ndarray, state: dict[str, Any]) -> None:
        state["tag"] = torch.tensor([float(len(str(media)) if isinstance(media, Path) else -1)])

    def prepare(self, frame: np.ndarray, ref: np.ndarray | None, state: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        return torch.tensor([float(frame.mean())]), state["tag"]

    def forward(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        FileTagged.calls.append(len(batch[0]))
        return batch[1][:, 0] * 1000 + batch[0][:, 0]


def test_prepared_tuples_batch_across_files_with_their_own_side_information(tmp_path: Path) -> None:
    FileTagged.calls = []
    paths = [mediagen.make_clip(tmp_path / ("c" * (i + 1) + ".mp4"), n_frames=4, size=(64, 48)) for i in range(3)]
    results = score_folder(FileTagged(), paths, progress=False)
    assert sum(FileTagged.calls) == 12 and max(FileTagged.calls) > 4, FileTagged.calls
    for p, r in zip(paths, results):
        means = [float(f.data.mean()) for f in read_media(p)]
        assert [f.score for f in r.frames] == pytest.approx([len(str(p)) * 1000 + m for m in means], abs=1e-2)
    assert FileTagged().score(mediagen.image_content(32, 24)).frames[0].score < 0  # arrays: begin sees the array

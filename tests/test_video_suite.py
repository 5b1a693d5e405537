"""The video suite: views, keyframe sampling, the four registered models, cross-file batching, the training recipe."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.cli import TRAIN_RECIPES, main
from common.data.manifest import read_manifest
from common.errors import WeightsError
from common.maps import quality_map
from common.media import UniformKeyframes, keyframe_indices, parse_sampler, probe_video, read_media, sample_indices
from common.registry import get_spec, load_model
from common.runner import score_folder
from common.weights import load_state
from suites.video.model import DISPLAY_LINES, SIDE, VideoNet, display_frame, frame_views, view_metrics
from suites.video.train import RECIPES, _frames, split_items
from tests import mediagen

TINY = {"width": 0.125, "hidden": 16}


def tiny_weights(path: Path, full_reference: bool = False) -> Path:
    """A random-init video net in the shipped weight-file form (a real network, just small and untrained)."""
    torch.manual_seed(0)
    net = VideoNet(width=TINY["width"], hidden=TINY["hidden"], full_reference=full_reference).eval()
    torch.save(net.export({"note": "random init for tests"}), path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("video-weights")
    return {"nr": tiny_weights(d / "nr.pt"), "fr": tiny_weights(d / "fr.pt", full_reference=True)}


def test_views_keep_native_scale_and_show_small_frames_at_display_size() -> None:
    big = mediagen.image_content(1280, 720)
    v = frame_views(big)
    assert v.shape == (2, 3, SIDE, SIDE) and v.dtype == torch.float32 and 0 <= v.min() and v.max() <= 1
    # the fragment view's top-left mini-patch is a native-resolution crop of the frame, not a rescaled one
    patch = (v[0, :, :32, :32] * 255).round().byte().permute(1, 2, 0).numpy()
    cell_h, cell_w = 720 // 7, 1280 // 7
    y, x = (cell_h - 32) // 2, (cell_w - 32) // 2
    assert np.array_equal(patch, big[y:y + 32, x:x + 32])
    small = mediagen.image_content(320, 180)
    assert display_frame(small).shape[:2] == (DISPLAY_LINES, 640)
    assert frame_views(small).shape == (2, 3, SIDE, SIDE)
    deep = (mediagen.image_content(400, 400).astype(np.uint16) * 257)
    assert torch.allclose(frame_views(deep), frame_views(mediagen.image_content(400, 400)), atol=1 / 255)


def test_keyframe_sampler_snaps_to_keyframes_and_falls_back(tmp_path: Path) -> None:
    s = parse_sampler("keyframes:4")
    assert s == UniformKeyframes(4) and str(s) == "keyframes:4"
    assert s.indices(100, 25.0, [0, 25, 50, 75]) == [0, 25, 50, 75]
    assert s.indices(100, 25.0, [0, 50]) == UniformKeyframes(4).indices(100, 25.0)  # too few keyframes: uniform
    assert s.indices(100, 25.0) == [12, 37, 62, 87]
    with pytest.raises(ValueError):
        parse_sampler("keyframes:0")
    clip = mediagen.make_clip(tmp_path / "gop.mp4", n_frames=40, size=(160, 120), gop=10)
    keys = keyframe_indices(clip)
    assert keys == [0, 10, 20, 30]
    info = probe_video(clip)
    idx = sample_indices(s, info.n_frames, info.fps, lambda: keyframe_indices(clip))
    assert idx == [0, 10, 20, 30]
    frames = list(read_media(clip, idx, info=info))  # keyframe-only decoding returns exactly those frames
    assert [f.index for f in frames] == idx
    assert [mediagen.frame_code(f.data) for f in frames] == idx


def test_registered_models_and_their_weights(weights: dict[str, Path], tmp_path: Path) -> None:
    for name, mode in (("ugc", "NR"), ("pgc", "NR"), ("game", "NR"), ("pgc-fr", "FR")):
        spec = get_spec(name)
        assert spec.suite == "video" and spec.mode == mode and spec.weights == f"video-{name}"
        m = load_model(name, device="cpu", weights=str(weights["fr" if mode == "FR" else "nr"]))
        assert m.name == name and str(m.sampler) == "keyframes:8" and m.score_range == (0.0, 100.0)
    with pytest.raises(WeightsError, match="full-reference network"):
        load_model("ugc", device="cpu", weights=str(weights["fr"]))
    with pytest.raises(WeightsError, match="no-reference network"):
        load_model("pgc-fr", device="cpu", weights=str(weights["nr"]))
    assert set(TRAIN_RECIPES) == {"backbone", *RECIPES}


def test_scores_have_frames_and_fr_scales_the_distorted_frame(weights: dict[str, Path], tmp_path: Path) -> None:
    clip = mediagen.make_clip(tmp_path / "a.mp4", n_frames=30, size=(320, 240))
    nr = load_model("ugc", device="cpu", weights=str(weights["nr"]))
    r = nr.score(clip)
    assert r.ok and 0 <= r.score <= 100 and len(r.frames) == 8 and r.model == "ugc"
    assert nr.score(mediagen.image_content(300, 200)).frames[0].frame == 0
    fr = load_model("pgc-fr", device="cpu", weights=str(weights["fr"]))
    ref = mediagen.make_clip(tmp_path / "ref.mp4", n_frames=12, size=(320, 240))
    low = mediagen.make_clip(tmp_path / "low.mp4", n_frames=12, size=(160, 120))
    same, scaled = fr.score(ref, ref=ref), fr.score(low, ref=ref)  # a lower ladder rung against its source
    assert same.ok and scaled.ok and len(scaled.frames) == 8
    assert same.score != scaled.score
    assert not fr.score(ref).ok  # FR without a reference: a clear error in the row


def test_view_metrics_compare_views_and_read_motion_from_the_previous_reference(tmp_path: Path) -> None:
    img = mediagen.image_content(400, 360)
    ref = frame_views(img)
    moved = frame_views(np.roll(img, 7, axis=1))
    noisy = frame_views(np.clip(img + np.random.default_rng(0).normal(0, 20, img.shape), 0, 255).astype(np.uint8))
    same = view_metrics(ref, ref, ref)
    assert torch.allclose(same, torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]] * 2), atol=1e-4)  # PSNR capped at 100 dB
    worse = view_metrics(noisy, ref, moved)
    assert (worse[:, :3] < 0.9).all() and (worse[:, 3] > 0.01).all() and (worse[:, 4] > 1).all()
    net = VideoNet(width=TINY["width"], hidden=TINY["hidden"], full_reference=True, metrics=True).eval()
    assert net.input_views == 6 and net(torch.stack([torch.cat([noisy, ref, moved])])).shape == (1,)
    with pytest.raises(ValueError, match="need full_reference"):
        VideoNet(metrics=True)
    path = tmp_path / "m.pt"
    torch.save(net.export(), path)
    fr = load_model("pgc-fr", device="cpu", weights=str(path))
    clip = mediagen.make_clip(tmp_path / "c.mp4", n_frames=30, size=(320, 240))
    assert fr.context_frames == 1 and fr.score(clip, ref=clip).ok


def test_a_full_reference_head_without_content_reads_only_differences(tmp_path: Path) -> None:
    """``content=False`` leaves the distorted views' pooled features out: any frame against itself then gives the
    head the same input, whatever it shows; with ``content`` the input still tells the two contents apart."""
    a, b = frame_views(mediagen.image_content(400, 360)), frame_views(mediagen.clip_content(3, 400, 360))
    for content, alike in ((False, True), (True, False)):
        net = VideoNet(width=TINY["width"], hidden=0, full_reference=True, metrics=True, content=content).eval()
        fa, fb = (net.frame_features(torch.stack([torch.cat([v, v, v])])) for v in (a, b))
        assert fa.shape[1] == net.norm.num_features and torch.allclose(fa, fb, atol=1e-5) == alike
    assert isinstance(net.quality[0], torch.nn.Linear) and len(net.quality) == 1  # hidden=0: a linear head
    path = tmp_path / "linear.pt"
    torch.save(VideoNet(width=TINY["width"], hidden=0, full_reference=True, metrics=True, content=False).export(),
               path)
    fr = load_model("pgc-fr", device="cpu", weights=str(path))
    assert not fr.net.content and fr.net.hidden == 0
    with pytest.raises(ValueError, match="content=False needs full_reference"):
        VideoNet(content=False)


def test_a_no_reference_head_can_read_distortion_cues(tmp_path: Path) -> None:
    """``cues=True`` appends the frame's distortion cues to the pooled features; the shipped form keeps it."""
    from common.metrics.cues import N_CUES, distortion_cues

    views = frame_views(mediagen.image_content(400, 360))
    net = VideoNet(width=TINY["width"], hidden=TINY["hidden"], cues=True).eval()
    f = net.frame_features(views[None])
    assert f.shape[1] == net.norm.num_features
    assert torch.allclose(f[0, -N_CUES:], distortion_cues(views[None, 0], views[None, 1])[0])
    path = tmp_path / "cues.pt"
    torch.save(net.export(), path)
    model = load_model("ugc", device="cpu", weights=str(path))
    image = tmp_path / "a.png"
    Image.fromarray(mediagen.image_content(400, 360)).save(image)
    assert model.net.cues and model.score(image).ok
    with pytest.raises(ValueError, match="no-reference"):
        VideoNet(full_reference=True, cues=True)


def test_views_a_network_does_not_read_are_left_black_and_change_nothing(tmp_path: Path) -> None:
    """A cue-only head without the exposure cues (``pgc``, ``game``) never reads the whole-frame view, so scoring
    skips scaling the frame down for it; heads that read it (deep features, exposure cues) still get it."""
    frame = mediagen.image_content(400, 360)
    full, black = frame_views(frame), frame_views(frame, whole="none")
    assert torch.equal(black[0], full[0]) and not black[1].any() and full[1].any()
    fragment_only = VideoNet(width=TINY["width"], hidden=TINY["hidden"], content=False, cues=True,
                             exposure=False).eval()
    assert fragment_only.whole_view == "none"
    assert torch.equal(fragment_only(full[None]), fragment_only(black[None]))
    for cfg, how in (({}, "area"), ({"content": False, "cues": True}, "sampled"), ({"full_reference": True}, "area"),
                     ({"cues": True, "deep_views": 1}, "sampled"), ({"deep_views": 1}, "none")):
        assert VideoNet(width=TINY["width"], hidden=TINY["hidden"], **cfg).whole_view == how
    path = tmp_path / "fragment-cues.pt"
    torch.save(fragment_only.export(), path)
    model = load_model("pgc", device="cpu", weights=str(path))
    assert not model.prepare(frame, None, {})[1].any()
    trained = model.train_views(frame, np.random.default_rng(0), {})  # fine-tuning leaves it black too
    assert trained[0].any() and not trained[1].any()
    deep = load_model("ugc", device="cpu", weights=str(tiny_weights(tmp_path / "deep.pt")))
    assert deep.prepare(frame, None, {})[1].any()
    with pytest.raises(ValueError, match="whole must be one of"):
        frame_views(frame, whole="black")


def test_a_fragments_only_backbone_reads_the_whole_view_through_its_cues_alone(tmp_path: Path) -> None:
    """``deep_views=1``: the backbone reads the fragments only (half its cost per frame) and the whole frame, taken
    from a sparse pixel grid rather than scaled with antialiasing, reaches the head through the exposure cues."""
    from common.metrics.cues import N_CUES

    frame = np.clip(mediagen.image_content(1280, 720) + np.random.default_rng(0).normal(0, 30, (720, 1280, 3)), 0,
                    255).astype(np.uint8)
    area, sampled = frame_views(frame), frame_views(frame, whole="sampled")
    assert torch.equal(area[0], sampled[0])
    assert abs(area[1].mean() - sampled[1].mean()) < 0.02 and not torch.equal(area[1], sampled[1])
    blind = VideoNet(width=TINY["width"], hidden=TINY["hidden"], deep_views=1).eval()
    two = VideoNet(width=TINY["width"], hidden=TINY["hidden"]).eval()
    assert blind.norm.num_features * 2 == two.norm.num_features
    assert torch.equal(blind(area[None]), blind(frame_views(frame, whole="none")[None]))
    net = VideoNet(width=TINY["width"], hidden=TINY["hidden"], cues=True, deep_views=1).eval()
    assert net.norm.num_features == blind.norm.num_features + N_CUES
    darker = sampled.clone()
    darker[1] *= 0.5
    assert not torch.equal(net(sampled[None]), net(darker[None]))  # the exposure cues see the whole view
    path = tmp_path / "one-view.pt"
    torch.save(net.export(), path)
    model = load_model("ugc", device="cpu", weights=str(path))
    assert model.net.deep_views == 1 and torch.equal(model.prepare(frame, None, {}), sampled)
    with pytest.raises(ValueError, match="deep_views"):
        VideoNet(full_reference=True, deep_views=1)


def test_heads_from_several_seeds_score_as_their_mean(tmp_path: Path) -> None:
    """``VideoNet.ensemble``: one-head networks of one config on one backbone become one network of that many heads
    that scores as their mean, through a weight file too; other configs or backbones are refused."""
    from common.quality import HeadEnsemble
    from suites.video.train import VideoRecipe

    def one(seed: int, hidden: int = TINY["hidden"]) -> VideoNet:
        torch.manual_seed(seed)
        net = VideoNet(width=TINY["width"], hidden=hidden, cues=True, deep_views=1, grid=4)
        with torch.no_grad():
            net.norm.running_mean.normal_()
            net.norm.running_var.uniform_(0.5, 2)
        return net.eval()

    members = [one(s) for s in range(3)]
    for m in members[1:]:
        m.backbone.load_state_dict(members[0].backbone.state_dict())
    joined = VideoNet.ensemble(members).eval()
    x = torch.rand(4, 2, 3, 128, 128)
    with torch.inference_mode():
        want = torch.stack([m(x) for m in members]).mean(0)
        assert torch.allclose(joined(x), want, atol=1e-4) and joined.heads == 3
        path = tmp_path / "ensemble.pt"
        torch.save(joined.export(), path)
        model = load_model("ugc", device="cpu", weights=str(path))
        assert model.net.heads == 3 and torch.allclose(model.net.float()(x), want, atol=0.05)  # fp16 weights
    with pytest.raises(ValueError, match="one config"):
        VideoNet.ensemble([members[0], one(3, hidden=8)])
    with pytest.raises(ValueError, match="backbones differ"):
        VideoNet.ensemble([members[0], one(4)])
    with pytest.raises(ValueError, match="at least 2"):
        HeadEnsemble(8, 4, 1)
    with pytest.raises(ValueError, match="neither refit"):
        VideoRecipe("x", "game", "vmaf", refit=True, seeds=2)


def test_a_network_chooses_its_fragment_grid_and_older_weights_keep_five(tmp_path: Path) -> None:
    """``grid``: the fragments' patches per side, which sets both views' side (grid x 32 pixels) and the network's
    cost; scoring and fine-tuning take the views the weights were trained on, and weights saved before the grid was
    a setting read as the 5x5 grid they used."""
    frame = mediagen.image_content(1280, 720)
    four = frame_views(frame, whole="sampled", grid=4)
    assert four.shape == (2, 3, 128, 128) and frame_views(frame).shape == (2, 3, SIDE, SIDE)
    net = VideoNet(width=TINY["width"], hidden=TINY["hidden"], cues=True, deep_views=1, grid=4).eval()
    path = tmp_path / "grid4.pt"
    torch.save(net.export(), path)
    model = load_model("ugc", device="cpu", weights=str(path))
    assert model.net.grid == 4 and torch.equal(model.prepare(frame, None, {}), four)
    assert model.train_views(frame, np.random.default_rng(0), {}).shape == (2, 3, 128, 128)
    assert model.score(frame).ok
    old = net.export()
    del old["config"]["grid"]
    assert VideoNet.build(old["config"]).grid == 5
    for bad in (0, 12, 4.0):
        with pytest.raises(ValueError, match="grid must be"):
            frame_views(frame, grid=bad)
        with pytest.raises(ValueError, match="grid must be"):
            VideoNet(grid=bad)


def test_per_frame_positions_cover_more_of_a_clip_and_stay_reproducible(tmp_path: Path) -> None:
    """``positions="frame"``: each scored frame of a file takes its patches at its own random cell positions, seeded
    by its place in the file, so a static clip is read in new places on every frame while scores repeat exactly and
    the versions of one source align; weights saved before the setting read cell centres, and an FR network refuses
    it (its two sides must align)."""
    from suites.video.model import frame_generator

    net = VideoNet(width=TINY["width"], hidden=TINY["hidden"], cues=True, deep_views=1, grid=4, positions="frame")
    path = tmp_path / "frame.pt"
    torch.save(net.eval().export(), path)
    model = load_model("ugc", device="cpu", weights=str(path))
    frame = mediagen.image_content(640, 360)
    state: dict = {}
    views = [model.prepare(frame, None, state) for _ in range(3)]
    assert all(not torch.equal(views[k][0], views[k + 1][0]) for k in range(2))  # fragments move from frame to frame
    assert all(torch.equal(views[k][1], views[0][1]) for k in range(3))  # the whole view does not
    assert torch.equal(views[2], frame_views(frame, frame_generator("frame", 2), "sampled", 4))
    clip = mediagen.make_clip(tmp_path / "static.mp4", n_frames=8, size=(640, 360))
    first, second = model.score(clip), model.score(clip)
    assert first.ok and [f.score for f in first.frames] == [f.score for f in second.frames]
    old = net.export()
    del old["config"]["positions"]
    assert VideoNet.build(old["config"]).positions == "centre"
    with pytest.raises(ValueError, match="positions must be"):
        VideoNet(positions="random")
    with pytest.raises(ValueError, match="full-reference"):
        VideoNet(full_reference=True, metrics=True, content=False, hidden=0, positions="frame")


def test_a_bitstream_head_reads_each_files_bitstream_cues(tmp_path: Path) -> None:
    """``bitstream=True``: the head also reads the file's bitstream cues, from ``begin``; images and raw video get
    the unknown input; the network refuses input without them."""
    from common.metrics.cues import N_BITSTREAM, N_FRAGMENT_CUES, bitstream_cues

    net = VideoNet(width=TINY["width"], hidden=TINY["hidden"], cues=True, bitstream=True).eval()
    views = frame_views(mediagen.image_content(400, 360))[None]
    with pytest.raises(ValueError, match="bitstream"):
        net(views)
    with pytest.raises(ValueError, match="bitstream cues"):
        net((views, torch.zeros(1, 3)))
    path = tmp_path / "bits.pt"
    torch.save(net.export(), path)
    model = load_model("pgc", device="cpu", weights=str(path))
    fine = mediagen.make_clip(tmp_path / "fine.mp4", n_frames=8, size=(320, 240))
    coarse = mediagen.make_clip(tmp_path / "coarse.mp4", n_frames=8, size=(320, 240), options={"crf": "45"})
    seen: list[torch.Tensor] = []
    forward = model.forward
    model.forward = lambda batch: (seen.append(batch[1]), forward(batch))[1]  # type: ignore[method-assign]
    image = tmp_path / "a.png"
    Image.fromarray(mediagen.image_content(400, 360)).save(image)
    known = []
    for media in (fine, coarse, image):
        seen.clear()
        assert model.score(media).ok
        known.append(torch.unique(torch.cat(seen), dim=0))
    assert [len(k) for k in known] == [1, 1, 1] and all(k.shape[1] == N_BITSTREAM for k in known)
    assert known[0][0, 5] > known[1][0, 5] and known[0][0, 0] == 1  # more bits per pixel at CRF 18 than at 45
    assert known[0][0, -1] == known[1][0, -1] == 1 and known[0][0, 9] < known[1][0, 9]  # and a finer H.264 QP
    assert torch.equal(known[2][0], bitstream_cues(None))
    assert quality_map(model, mediagen.image_content(400, 360)).tiles > 1  # maps of tuple-preparing models
    with pytest.raises(ValueError, match="no-reference"):
        VideoNet(full_reference=True, bitstream=True)
    cues_only = VideoNet(width=TINY["width"], hidden=TINY["hidden"], content=False, cues=True, exposure=False,
                         bitstream=True).eval()  # the compression recipes' head: fragment and bitstream cues only
    assert cues_only.norm.num_features == N_FRAGMENT_CUES + N_BITSTREAM
    side = torch.zeros(2, N_BITSTREAM)
    assert cues_only((views.repeat(2, 1, 1, 1, 1), side)).shape == (2,)
    with pytest.raises(ValueError, match="content or its distortion cues"):
        VideoNet(content=False)
    state = cues_only.export()
    assert "backbone" not in state  # the head does not read it, so its file leaves it out
    again = VideoNet.from_export(state).eval()
    assert torch.allclose(again((views, side[:1])), cues_only((views, side[:1])), rtol=2e-3, atol=0.05)  # fp16 file
    with pytest.raises(WeightsError, match="no backbone"):
        VideoNet.from_export({k: v for k, v in net.export().items() if k != "backbone"})


def test_one_model_call_serves_frames_of_several_files(weights: dict[str, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(4):
        mediagen.make_clip(folder / f"clip{i}.mp4", n_frames=10 + 5 * i, size=(320 + 32 * i, 240))
    for i in range(3):
        Image.fromarray(mediagen.image_content(200 + 50 * i, 150)).save(folder / f"img{i}.png")
    model = load_model("ugc", device="cpu", weights=str(weights["nr"]))
    sizes: list[int] = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda batch: (sizes.append(len(batch)), forward(batch))[1])
    out = tmp_path / "scores.jsonl"
    results = score_folder(model, [folder], out=out, progress=False)
    assert all(r.ok for r in results) and len(results) == 7
    frames = sum(len(r.frames) for r in results)
    assert sum(sizes) == frames and max(sizes) > 8, f"no model call mixed files: {sizes}"
    assert len(out.read_text().splitlines()) == 7


def tiny_set(root: Path, test: int = 3) -> Path:
    """A labelled video set in the builder's layout: 4 contents x (pristine + 3 levels of H.264), content ``test``
    the test split, the others train (of which "content3" validates, when it trains)."""
    rows = []
    for c in range(4):
        split = "test" if c == test else "train"
        def content(i: int, c: int = c) -> np.ndarray:
            return mediagen.clip_content(i + 50 * c, 320, 240)

        (root / f"c{c}").mkdir(parents=True)
        mediagen.make_clip(root / f"c{c}" / "pristine.mp4", n_frames=8, content=content)
        rows.append([f"c{c}/pristine.mp4", "", f"content{c}", "pristine", 0, {"vmaf": 98.0, "fused": 100.0}, split])
        for lv, crf in ((1, 30), (2, 40), (3, 51)):
            dist = root / f"c{c}" / f"h264_{lv}.mp4"
            mediagen.make_clip(dist, n_frames=8, content=content, options={"crf": str(crf)})
            rows.append([f"c{c}/h264_{lv}.mp4", f"c{c}/pristine.mp4", f"content{c}", "h264", lv,
                         {"vmaf": 95.0 - 25 * lv, "fused": 90.0 - 20 * lv}, split])
    import csv

    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "ref", "content", "kind", "level", "labels", "split"])
        for r in rows:
            w.writerow(r[:5] + [json.dumps(r[5])] + r[6:])
    (root / "manifest.json").write_text(json.dumps({"suite": "pgc", "label": "vmaf", "labels": ["fused", "vmaf"],
                                                    "media": "video"}))
    return root


@pytest.mark.parametrize("recipe", ["pgc", "pgc-fr", "ugc"])
def test_dqa_train_video_recipe(recipe: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    root = tiny_set(tmp_path_factory.mktemp("set") / "pgc", test=0)  # content3 validates
    monkeypatch.setenv("DQA_DATA", str(tmp_path / "data"))
    out = tmp_path / f"{recipe}.pt"
    batch = str(RECIPES[recipe].per_content or 4)
    args = ["-q", "train", recipe, "--set", str(root), "--out", str(out), "--epochs", "3", "--batch", batch]
    assert main(args) == 0
    state = load_state(out)
    cfg = state["config"]
    assert cfg["full_reference"] == (recipe == "pgc-fr") and (cfg["train_clips"], cfg["val_clips"]) == (8, 4)
    assert cfg["label"] == RECIPES[recipe].label and cfg["command"].startswith(f"dqa -q train {recipe}")
    assert cfg["cues"] == RECIPES[recipe].cues == (recipe != "pgc-fr")
    assert all(v.dtype == torch.float16 for v in state["quality"].values() if v.is_floating_point())
    assert cfg["metrics"] == (recipe == "pgc-fr")
    assert cfg["bitstream"] == RECIPES[recipe].bitstream == (recipe in ("pgc", "game"))
    assert ("refit" in cfg) == RECIPES[recipe].refit == (recipe in ("pgc", "game"))
    if "refit" in cfg:  # trained again on all 12 clips, training and validation contents, for the chosen epochs
        assert (cfg["refit"]["clips"], cfg["refit"]["epochs"]) == (12, cfg["best_epoch"])
        assert cfg["refit"]["steps"] == cfg["best_epoch"] * -(-12 // int(batch)) and cfg["refit"]["contents"] == 3
    if recipe == "ugc":
        assert main(args[:-1] + ["4"]) == 2  # groups of 8 clips of a content do not fill batches of 4
        ensemble = cfg["ensemble"]  # three heads on the frozen backbone, from seeds 0, 1 and 2
        assert cfg["heads"] == 3 and ensemble["seeds"] == [0, 1, 2] and len(ensemble["members"]) == 3
        assert len(list((tmp_path / "data" / "runs" / recipe).glob("views-*/run-*.log.jsonl"))) == 3
    feats = list((tmp_path / "data" / "runs" / recipe).glob("views-*/chunk*.npy"))
    assert feats, "the views of the training clips are cached"
    assert np.load(feats[0], mmap_mode="r").shape[3] == (6 if recipe == "pgc-fr" else 2)  # FR: + previous reference
    model = load_model(recipe, device="cpu", weights=str(out))
    if recipe == "ugc":  # fragments-only backbone on a 4x4 grid, per-frame positions; views cached as scored
        assert model.net.deep_views == 1 and model.net.whole_view == "sampled" and model.net.grid == 4
        assert model.net.positions == "frame"
        frames = _frames(split_items(read_manifest(root).select("train"))[0][0].path)
        scoring: dict = {}
        scored = torch.stack([model.prepare(f, None, scoring) for f in frames]).mul(255).round().to(torch.uint8)
        assert scored.shape[1:] == (2, 3, 128, 128)
        assert np.array_equal(np.load(sorted(feats)[0], mmap_mode="r")[0, 0], scored.numpy())
        again = model.prepare(frames[0], None, scoring)  # the same frame later in a file: elsewhere in its cells
        assert not torch.equal(again[0], model.prepare(frames[0], None, {})[0])
    test = root / "c0"
    r = model.score(test / "h264_3.mp4", ref=test / "pristine.mp4" if recipe == "pgc-fr" else None)
    assert r.ok and 0 <= r.score <= 100
    assert main(args) == 0  # a second run reuses the cached views and the finished checkpoints, training no further
    again = load_state(out)["quality"]
    assert all(torch.equal(a, again[k]) for k, a in state["quality"].items())


def test_grouped_order_fills_batches_with_one_content_each_pristine_first() -> None:
    """``per_content`` batches: each group of clips is one content, its pristine clip first, and an epoch is as
    long as the set; without it, a plain permutation."""
    from common.data.manifest import Item
    from suites.video.train import ClipViews

    items = [Item(Path(f"c{c}/{k}.mp4"), None, f"content{c}", "pristine" if k == 0 else "h264", k, {}, "train")
             for c in range(5) for k in range(6 + c)]
    chunks = [np.zeros((len(items), 1), np.uint8)]
    data = ClipViews(chunks, range(len(items)), [0.0] * len(items), True, items=items, per_content=4)
    order = data.order(0, 1)
    assert len(order) == len(items) and order == data.order(0, 1) and order != data.order(0, 2)
    for g in range(0, len(order) - 3, 4):
        group = [items[i] for i in order[g:g + 4]]
        assert len({i.content for i in group}) == 1 and group[0].pristine and not any(i.pristine for i in group[1:])
    plain = ClipViews(chunks, range(len(items)), [0.0] * len(items), True)
    assert sorted(plain.order(0, 1)) == list(range(len(items)))
    with pytest.raises(ValueError, match="item of every clip"):
        ClipViews(chunks, range(len(items)), [0.0] * len(items), True, per_content=4)


def test_report_checks_each_goal_against_the_eval_tables(tmp_path: Path) -> None:
    from suites.video.report import GOALS, report

    def row(model: str, **figures: float) -> dict:
        base = {"model": model, "weights_sha256": "0" * 64, "command": f"dqa eval --models {model}", "n": 100,
                "srcc": 0.5, "plcc": 0.5, "krcc": 0.4, "rmse": 10.0, "d_auc": 0.6, "l_test": 0.5, "p_test": 0.6}
        return {**base, **figures}

    tables = {"pgc": [row("pgc", srcc=0.93), row("pgc-fr", srcc=0.94), row("niqe", srcc=0.1), row("psnr", srcc=0.8)],
              "game": [row("game", srcc=0.91), row("brisque", srcc=-0.2)],
              "ugc": [row("ugc", l_test=0.95, d_auc=0.9), row("niqe", l_test=0.3, d_auc=0.5)]}
    for name, models in tables.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "set": {"manifest": f"$DQA_DATA/sets/{name}", "sha256": "1" * 64, "label": "vmaf", "rows": 120,
                    "contents": 5}, "models": models}))
    text = report(tmp_path, record=False)
    lines = {(ln.split("|")[1].strip(), ln.split("|")[2].strip()): ln for ln in text.splitlines()
             if ln.startswith("| `")}
    assert len(lines) == len(GOALS)
    assert "| 0.930 | yes |" in lines[("`pgc`", "SRCC with VMAF")]
    assert "| 0.940 | no |" in lines[("`pgc-fr`", "SRCC with VMAF")] and "0.800" in lines[("`pgc-fr`", "SRCC with VMAF")]
    assert "| 0.900 | no |" in lines[("`ugc`", "D-test AUC (pristine vs distorted)")]
    assert "| 0.950 | yes |" in lines[("`ugc`", "L-test (severity order)")]
    assert (tmp_path / "video.md").read_text() == text
    (tmp_path / "game.json").unlink()
    text = report(tmp_path, record=False)
    assert "| `game` | SRCC with VMAF on held-out CGI and art | 0.90 | not evaluated | no |" in text


def test_encoding_oracle_predicts_test_clips_from_their_codec_and_rung(tmp_path: Path) -> None:
    from suites.video.report import encoding_oracle

    root = tiny_set(tmp_path / "pgc")  # every content's VMAF falls with the rung alone: the oracle ranks perfectly
    assert encoding_oracle(root) == pytest.approx(1.0)
    assert encoding_oracle(root, label="missing") is None


def test_fine_tuning_trains_the_last_stages_and_keeps_batchnorm_statistics() -> None:
    net = VideoNet(0.125, (1, 1, 1, 1), 16)
    net.freeze_backbone(2)
    trained = {n.split(".")[1] for n, p in net.named_parameters() if p.requires_grad and n.startswith("backbone.")}
    assert trained == {"layer3", "layer4"}
    net.train()
    assert not net.backbone.training and net.norm.training  # pretrained statistics stay, so scoring can fold them
    net.freeze_backbone(0)
    assert not any(p.requires_grad for p in net.backbone.parameters())
    with pytest.raises(ValueError, match="0-4"):
        net.freeze_backbone(5)


def test_clip_views_pair_bitstream_cues_and_sometimes_hide_them_in_training() -> None:
    from common.metrics.cues import N_BITSTREAM
    from suites.video.train import BITSTREAM_DROP, FRAMES, PASSES, ClipViews, PooledClips

    n = 200
    chunks = [np.zeros((n, PASSES, FRAMES, 2, 3, 32, 32), np.uint8)]
    side = torch.rand(n, N_BITSTREAM) + 1
    train = ClipViews(chunks, range(n), [0.0] * n, True, side=side)
    hidden = [not train[i]["views"][1].any() for i in range(n)]
    assert 0.5 * BITSTREAM_DROP < np.mean(hidden) < 1.5 * BITSTREAM_DROP
    assert all(torch.equal(train[i]["views"][1], side[i]) for i in range(n) if not hidden[i])
    val = ClipViews(chunks, range(n), [0.0] * n, False, side=side)
    assert all(torch.equal(val[i]["views"][1], side[i]) for i in range(n))
    with pytest.raises(ValueError, match="bitstream cue rows"):
        ClipViews(chunks, range(n), [0.0] * n, True, side=side[:3])
    net = VideoNet(width=TINY["width"], hidden=TINY["hidden"], cues=True, bitstream=True).eval()
    batch = torch.utils.data.default_collate([val[0], val[1]])
    assert PooledClips(net)(batch["views"]).shape == (2,)


def test_ladder_slopes_measure_how_bits_per_pixel_fall_with_the_frame_size(tmp_path: Path) -> None:
    """The report's basis of BPP_SIZE_EXPONENT: along one content's ladder (one CRF), smaller rungs spend more
    bits per pixel; test contents and other kinds are not read."""
    import csv

    from suites.video.report import ladder_bpp_slopes

    rows = []
    for c, split in ((0, "train"), (1, "test")):
        for lv, (w, h) in enumerate(((320, 240), (160, 120), (96, 72)), 1):
            rel = f"c{c}/ladder_{lv}.mp4"
            (tmp_path / f"c{c}").mkdir(exist_ok=True)
            mediagen.make_clip(tmp_path / rel, n_frames=6, size=(w, h), options={"crf": "23"})
            rows.append([rel, "", f"content{c}", "ladder", lv, json.dumps({"vmaf": 50.0}), split])
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "ref", "content", "kind", "level", "labels", "split"], *rows])
    (tmp_path / "manifest.json").write_text(json.dumps({"suite": "pgc", "label": "vmaf", "media": "video"}))
    slopes = ladder_bpp_slopes(tmp_path)
    assert slopes.shape == (1,) and -1 < slopes[0] < 0


def test_the_size_check_encodes_held_out_images_at_a_new_size_and_scores_them(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m suites.video.sizecheck`` pans the set's held-out images at the asked height, labels each encode by
    VMAF and scores it: a coarse rung gets a lower VMAF than a fine one, and the page gives SRCC and the errors."""
    from suites.video import sizecheck

    monkeypatch.setenv("DQA_DATA", str(tmp_path))
    photo = tmp_path / "debian" / "pkg" / "tall.png"
    photo.parent.mkdir(parents=True)
    Image.fromarray(mediagen.image_content(240, 180)).save(photo)
    Image.fromarray(mediagen.image_content(80, 60)).save(tmp_path / "debian" / "pkg" / "short.png")
    set_dir = tmp_path / "sets" / "pgc"
    set_dir.mkdir(parents=True)
    (set_dir / "manifest.csv").write_text("path,ref,content,kind,level,labels,split\na.mp4,,x,pristine,0,{},test\n")
    (set_dir / "manifest.json").write_text(json.dumps({"held_out": ["debian/pkg/short.png", "debian/pkg/tall.png"]}))
    assert sizecheck.held_out_images(set_dir, 96, 5) == [photo]  # the short one cannot show 96 lines
    with pytest.raises(ValueError, match="lines high"):
        sizecheck.held_out_images(set_dir, 400, 5)
    rows = sizecheck.check("pgc", set_dir, 96, 1, tmp_path / "work", rungs=(("h264", 1), ("h264", 5)))
    assert [(r.codec, r.level) for r in rows] == [("h264", 1), ("h264", 5)]
    assert rows[0].vmaf > rows[1].vmaf and all(0 <= r.score <= 100 for r in rows)
    assert probe_video(tmp_path / "work" / "0_h2641.mp4").height == 96
    page = sizecheck.report(rows, "pgc", 96, "cmd")
    err = [r.score - r.vmaf for r in rows]
    assert f"mean error {np.mean(err):+.1f} VMAF points" in page and f"absolute error {np.mean(np.abs(err)):.1f}" in page
    assert "debian/pkg/tall.png | h264 | 5" in page

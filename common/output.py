"""Result writers (JSONL, CSV, VMAF-shaped JSON) that put each finished file on disk at once.

Every write is flushed and fsynced before the next file starts. Reopened with ``resume=True``, a
writer keeps the rows already scored by the same model, drops error rows (those files are tried
again) and a half-written last row left by a killed run, and appends.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Protocol

from common.pooling import pool, summary
from common.result import Result

FORMATS = ("jsonl", "csv", "json")
CSV_FIELDS = ("path", "score", "pooling", "frames", "mean", "harmonic_mean", "min", "p5", "max",
              "error", "model", "weights_sha256", "extras")
_JSON_TAIL = "\n]}\n"


class Writer(Protocol):
    done: set[str]  # keys (see file_key) of the files already in the output

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


def file_key(path: str) -> str:
    """How resume recognises a file: its absolute path (arrays keep their placeholder name)."""
    return path if path.startswith("<") else os.path.abspath(os.path.expanduser(path))


def open_writer(out: str | Path, fmt: str | None = None, resume: bool = False, model: str = "",
                metric: str = "score", weights_sha256: str | None = None) -> Writer:
    """A writer for ``out`` (``-``: JSONL on stdout); without ``resume`` an existing file is replaced.

    ``model`` is checked against rows already there on resume; ``metric`` names the per-frame
    metric in the JSON format.
    """
    if str(out) == "-":
        if fmt not in (None, "jsonl"):
            raise ValueError(f"--out - writes JSONL to standard output; --format {fmt} needs a file")
        return JsonlWriter(None, resume, model)
    fmt = infer_format(out, fmt)
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name such as {path / ('scores.' + fmt)}")
    try:
        if fmt == "json":
            return JsonWriter(path, resume, model, metric, weights_sha256)
        return (JsonlWriter if fmt == "jsonl" else CsvWriter)(path, resume, model)
    except OSError as exc:
        raise ValueError(f"cannot write --out {path}: {exc.strerror or exc}") from exc


def _sync(f: io.TextIOBase) -> None:
    f.flush()
    if f.fileno() > 2:
        os.fsync(f.fileno())


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        _sync(f)
    os.replace(tmp, path)


def _kept(rows: list[tuple[str, dict[str, Any]]], model: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Rows worth keeping on resume: scored (no error); refuses a file written by another model."""
    others = {r.get("model") for _, r in rows} - {model, None, ""}
    if others:
        raise ValueError(f"cannot resume {path}: it holds scores from {', '.join(sorted(map(str, others)))}, "
                         f"not {model}; write to a new --out")
    return [(text, r) for text, r in rows if not r.get("error")]


def read_jsonl_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The complete result rows of a JSONL file as (line, row); a torn last line from a killed run is skipped."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if line.endswith("\n") and isinstance(row, dict) and "path" in row:
            rows.append((line, row))
    return rows


class JsonlWriter:
    """One JSON object per line with the :class:`Result` fields; ``path=None`` writes to stdout."""

    def __init__(self, path: Path | None, resume: bool, model: str = "") -> None:
        self.done: set[str] = set()
        if path is None:
            self.f, self.owned = sys.stdout, False
            return
        if resume and path.exists():
            kept = _kept(read_jsonl_rows(path), model, path)
            _replace(path, "".join(text for text, _ in kept))
            self.done = {file_key(r["path"]) for _, r in kept}
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f, self.owned = open(path, "a" if resume else "w", encoding="utf-8"), True

    def write(self, result: Result) -> None:
        self.f.write(json.dumps(result.to_dict()) + "\n")
        _sync(self.f)

    def close(self) -> None:
        if self.owned:
            self.f.close()


def csv_row(result: Result) -> dict[str, object]:
    """One CSV row: pooled score, its statistics, the error and extras as JSON."""
    x = result.frame_scores()
    stats = summary(x) if result.ok else {}
    d = result.to_dict()
    return {
        "path": d["path"], "score": d["score"], "pooling": d["pooling"], "frames": len(x),
        "mean": stats.get("mean"), "harmonic_mean": stats.get("harmonic_mean"), "min": stats.get("min"),
        "p5": pool(x, "p5") if stats else None, "max": stats.get("max"), "error": d["error"] or "",
        "model": d["model"], "weights_sha256": d["weights_sha256"] or "",
        "extras": json.dumps(d["extras"]) if d["extras"] else "",
    }


class CsvWriter:
    """One row per file, header first."""

    def __init__(self, path: Path, resume: bool, model: str = "") -> None:
        self.done: set[str] = set()
        kept: list[tuple[str, dict[str, Any]]] = []
        if resume and path.exists():
            text = path.read_text(encoding="utf-8")
            text = text[: text.rfind("\n") + 1]  # a torn last row from a killed run
            rows = [("", r) for r in csv.DictReader(io.StringIO(text, newline=""))
                    if r.get("path") and None not in r.values() and None not in r]
            kept = _kept(rows, model, path)
            self.done = {file_key(r["path"]) for _, r in kept}
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "w", encoding="utf-8", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=CSV_FIELDS)
        self.w.writeheader()
        self.w.writerows(r for _, r in kept)
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
    """A VMAF-shaped document ``{version, model, weights_sha256, files: [...]}``, one file entry per line.

    Each write replaces the closing ``]}`` with the new entry and a new closing, so the document is
    valid JSON after every file and appending costs the same however many files came before.
    """

    def __init__(self, path: Path, resume: bool, model: str = "", metric: str = "score",
                 weights_sha256: str | None = None) -> None:
        self.metric = metric
        self.done: set[str] = set()
        entries: list[str] = []
        if resume and path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0] + "]}") if lines and lines[0].endswith("[") else {}
            rows = []
            for line in lines[1:]:
                try:
                    entry = json.loads(line.strip().strip(","))
                except json.JSONDecodeError:
                    continue  # the closing line, or a torn entry from a killed run
                if isinstance(entry, dict) and "path" in entry:
                    rows.append((line.strip().strip(","), {**entry, "model": header.get("model")}))
            entries = [text for text, _ in _kept(rows, model, path)]
            self.done = {file_key(json.loads(text)["path"]) for text in entries}
        head = json.dumps({"version": 1, "model": model, "weights_sha256": weights_sha256})[:-1] + ', "files": ['
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "wb")  # binary: the closing is rewritten at a byte offset
        self._append(head + "".join(("\n" if i == 0 else ",\n") + e for i, e in enumerate(entries)))
        self.n = len(entries)

    def _append(self, text: str) -> None:
        self.f.write((text + _JSON_TAIL).encode("utf-8"))
        self.f.flush()
        os.fsync(self.f.fileno())

    def write(self, result: Result) -> None:
        self.f.seek(-len(_JSON_TAIL), os.SEEK_END)
        self.f.truncate()
        self._append(("\n" if self.n == 0 else ",\n") + json.dumps(vmaf_entry(result, self.metric)))
        self.n += 1

    def close(self) -> None:
        self.f.close()

"""Screen content rendered by a real browser: documentation pages that Debian ships, plus terminal text,
tables, charts and slides generated as HTML, captured by headless Chromium at several window sizes.

``dqa data screens`` writes PNGs and ``screens.csv`` (path, page, kind, size, licence) under
``$DQA_DATA/screens``. Pages are picked deterministically, so two runs render the same set.
"""
from __future__ import annotations

import csv
import html
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from common.data.sources import data_dir
from common.errors import DqaError

log = logging.getLogger(__name__)

OPENCV_HTML = "debian/opencv-doc/usr/share/doc/opencv-doc/opencv4/html"
SIZES: tuple[tuple[int, int], ...] = ((1280, 800), (1920, 1080))
# documentation page families and how many distinct pages to take from each
DOC_FAMILIES: tuple[tuple[str, str, int], ...] = (
    ("tutorial", "**/tutorial_*.html", 14),
    ("class reference", "**/class*.html", 8),
    ("module group", "**/group__*.html", 6),
    ("javadoc", "javadoc/org/opencv/**/*.html", 6),
    ("member list", "**/*-members.html", 3),
    ("index", "[a-z]*.html", 3),
)
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars")


@dataclass(frozen=True)
class Page:
    """One page to capture: a file URL, its family and licence."""

    url: str
    kind: str
    licence: str


def doc_pages(root: Path) -> list[Page]:
    """Evenly spaced pages from each documentation family of the fetched opencv-doc."""
    base = root / OPENCV_HTML
    if not base.is_dir():
        raise DqaError(f"no OpenCV documentation under {base}; run `dqa data fetch --only opencv-doc` first")
    pages = []
    for kind, pattern, n in DOC_FAMILIES:
        files = sorted(base.glob(pattern))
        picks = [files[int(i)] for i in np.linspace(0, len(files) - 1, min(n, len(files)))] if files else []
        pages += [Page(p.as_uri(), kind, "BSD-3-Clause/Apache-2.0 (opencv-doc)") for p in picks]
    return pages


_STYLE = "body{margin:0;font-family:%s;background:%s;color:%s}"


def _terminal(text: str) -> str:
    return (f"<html><style>{_STYLE % ('DejaVu Sans Mono,monospace', '#1e1e1e', '#d4d4d4')}"
            "pre{font-size:14px;line-height:1.3;margin:12px}</style><body><pre>"
            f"{html.escape(text)}</pre></body></html>")


def _table(rng: np.random.Generator) -> str:
    cols = ["region", "quarter", "units", "revenue", "margin %", "growth %"]
    rows = "".join(
        f"<tr><td>{r}</td><td>Q{q}</td><td>{rng.integers(100, 9999)}</td><td>{rng.uniform(1e3, 9e5):,.2f}</td>"
        f"<td>{rng.uniform(2, 40):.1f}</td><td>{rng.uniform(-15, 30):+.1f}</td></tr>"
        for r in ("North", "South", "East", "West", "Central") for q in range(1, 5))
    return (f"<html><style>{_STYLE % ('Liberation Sans,sans-serif', '#fff', '#222')}table{{border-collapse:collapse;"
            "margin:24px;font-size:15px}td,th{border:1px solid #bbb;padding:4px 10px}th{background:#e8eef7}"
            f"tr:nth-child(even){{background:#f6f6f6}}</style><body><table><tr>{''.join(f'<th>{c}</th>' for c in cols)}"
            f"</tr>{rows}</table></body></html>")


def _chart(rng: np.random.Generator) -> str:
    w, h, n = 900, 500, 24
    series = [np.cumsum(rng.normal(0, 1, n)) for _ in range(3)]
    lo, hi = min(s.min() for s in series), max(s.max() for s in series)
    lines = "".join(
        f'<polyline fill="none" stroke="{c}" stroke-width="2.5" points="'
        + " ".join(f"{60 + i * (w - 80) / (n - 1):.1f},{h - 40 - (v - lo) / (hi - lo) * (h - 80):.1f}" for i, v in enumerate(s))
        + '"/>' for s, c in zip(series, ("#1f77b4", "#d62728", "#2ca02c")))
    grid = "".join(f'<line x1="60" x2="{w - 20}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="8" y="{y + 4}" '
                   f'font-size="12">{hi - (y - 40) / (h - 80) * (hi - lo):.1f}</text>' for y in range(40, h - 39, 60))
    bars = "".join(f'<rect x="{60 + i * 34}" y="{h + 200 - v}" width="26" height="{v}" fill="#8c6bb1"/>'
                   for i, v in enumerate(rng.integers(20, 180, 24)))
    return (f"<html><style>{_STYLE % ('Liberation Sans,sans-serif', '#fff', '#222')}</style><body>"
            f'<h2 style="margin:16px 24px">Weekly metrics</h2><svg width="{w}" height="{h + 220}">{grid}{lines}{bars}'
            "</svg></body></html>")


def _slide(title: str, bullets: Sequence[str], dark: bool) -> str:
    bg, fg = ("#14213d", "#f1f1f1") if dark else ("#fdfdfd", "#14213d")
    items = "".join(f"<li>{html.escape(b)}</li>" for b in bullets)
    return (f"<html><style>{_STYLE % ('Liberation Sans,sans-serif', bg, fg)}h1{{font-size:56px;margin:60px 80px 20px;"
            f"border-bottom:6px solid #fca311}}li{{font-size:32px;margin:18px 0}}ul{{margin:20px 120px}}</style><body>"
            f"<h1>{html.escape(title)}</h1><ul>{items}</ul></body></html>")


def generated_pages(root: Path, folder: Path) -> list[Page]:
    """Terminal text, tables, charts and slides written as HTML files into ``folder``."""
    rng = np.random.default_rng(7)
    texts = sorted(root.glob("debian/*/usr/share/doc/*/copyright"))[:4]
    docs: list[tuple[str, str]] = [("terminal", _terminal(t.read_text(errors="replace")[:6000])) for t in texts]
    docs += [("table", _table(rng)) for _ in range(3)] + [("chart", _chart(rng)) for _ in range(3)]
    docs += [("slide", _slide(*s)) for s in (
        ("Quarterly review", ["Encoding ladder cut bitrate 18%", "VMAF above 93 at every rung", "Next: per-title tuning"], False),
        ("Architecture", ["Decode workers feed a bounded queue", "Frames of many files share one batch", "Rows stream to disk"], True),
        ("Roadmap", ["Night images: Retinex + bilinear pooling", "Screen content: deep feature statistics", "Underwater: enhance and score"], False))]
    folder.mkdir(parents=True, exist_ok=True)
    pages = []
    for i, (kind, text) in enumerate(docs):
        path = folder / f"{kind}_{i:02d}.html"
        path.write_text(text, encoding="utf-8")
        pages.append(Page(path.as_uri(), kind, "generated by dqa (Apache-2.0); terminal text from Debian copyright files"))
    return pages


def chromium() -> str:
    """Path of the Chromium binary (Debian's ``chromium``)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise DqaError("screen rendering needs Chromium: apt-get install chromium")
    return exe


def capture(url: str, out: Path, size: tuple[int, int], exe: str) -> None:
    """Screenshot one page at a window size with a fresh profile."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
               f"--screenshot={out}", url]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0 or not out.is_file():
        raise DqaError(f"chromium could not capture {url}: {res.stderr.strip()[-300:]}")


def render_screens(root: Path | None = None, sizes: Sequence[tuple[int, int]] = SIZES, progress: bool = True) -> Path:
    """Capture every page at every size into ``root/screens``; returns the manifest path. Done captures are kept."""
    root = root or data_dir()
    out = root / "screens"
    pages = doc_pages(root) + generated_pages(root, out / "html")
    exe = chromium()
    rows = []
    jobs = [(i, p, s) for i, p in enumerate(pages) for s in sizes]
    for i, page, (w, h) in tqdm(jobs, desc="screens", unit="shot", disable=not progress):
        path = out / f"page{i:03d}_{w}x{h}.png"
        if not path.is_file():
            capture(page.url, path, (w, h), exe)
        rows.append({"path": path.relative_to(root).as_posix(), "page": page.url.split(str(root))[-1],
                     "kind": page.kind, "width": w, "height": h, "licence": page.licence})
    manifest = out / "screens.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest

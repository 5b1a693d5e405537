"""The catalogue of pristine media: which fetched files are usable, and what each one is.

``candidates()`` walks the fetched sources and keeps one file per distinct content (the largest
of a wallpaper's resolution and dark/light variants). ``contact_sheets()`` renders numbered
thumbnails, and a person tags each candidate by looking at it: ``photo`` (natural photo), ``art``
(digital art, CGI, paintings), ``screen`` (screen content) or ``video``; masks, synthetic shapes,
logos, already-degraded copies (motion-blurred samples, tampered copies) and near-duplicates
(stereo pairs, calibration series, colour variants) are left out. The result is the committed
``catalogue.csv`` beside this file (path under the data folder, tag, size, source, licence).
Screen pages rendered by ``dqa data screens`` are listed too, under ``screens/``; their byte size is
left at 0 because it depends on the Chromium build that renders them.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from common.data.sources import data_dir
from common.media import IMAGE_EXTS, VIDEO_EXTS

TAGS = ("photo", "art", "screen", "video")
CATALOGUE = Path(__file__).resolve().parent / "catalogue.csv"
CATALOGUE_FIELDS = ("path", "tag", "note", "width", "height", "bytes", "source", "licence")
MIN_SIDE = 256
_VARIANT = re.compile(r"([_-](\d{3,5}x\d{3,5}|[dl]|dark|light|day|night))+$", re.IGNORECASE)
_SKIP_PARTS = {"html", "doc-base", "icons", "grub", "login", "lockscreen"}  # docs and UI assets, not pristine scenes
_EXCLUDE_STEMS = {"carphone_distorted", "Megamind_bugy"}  # distorted copies of other sources
RENDERED = "screens/"  # path prefix of rendered screen pages


@dataclass(frozen=True)
class Candidate:
    """A fetched media file that may enter the catalogue."""

    path: str  # relative to the data folder
    source: str
    group: str  # files of one group are the same content; one is kept
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class Entry:
    """One tagged file of the committed catalogue (``note`` is e.g. ``cgi`` for an animated clip)."""

    path: str
    tag: str
    note: str
    width: int
    height: int
    bytes: int
    source: str
    licence: str


def load_catalogue(path: Path = CATALOGUE) -> list[Entry]:
    """The committed catalogue, validated: known tags, unique paths, positive sizes."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    entries = []
    for i, r in enumerate(rows, start=2):
        if r.get("tag") not in TAGS:
            raise ValueError(f"{path}:{i}: tag {r.get('tag')!r} is not one of {', '.join(TAGS)}")
        e = Entry(r["path"], r["tag"], r["note"], int(r["width"]), int(r["height"]), int(r["bytes"]), r["source"],
                  r["licence"])
        rendered = e.path.startswith(RENDERED)
        if min(e.width, e.height, 1 if rendered else e.bytes) <= 0 or not e.licence:
            raise ValueError(f"{path}:{i}: {e.path} needs a positive size and a licence")
        entries.append(e)
    if len({e.path for e in entries}) != len(entries):
        raise ValueError(f"{path}: a path is listed twice")
    return entries


def missing_files(entries: list[Entry], root: Path | None = None) -> list[str]:
    """Catalogue paths absent from the fetched data, or (except renders) of another size (fetch again to fix)."""
    root = root or data_dir()
    return [e.path for e in entries if not (root / e.path).is_file()
            or (not e.path.startswith(RENDERED) and (root / e.path).stat().st_size != e.bytes)]


def _group(rel: Path) -> str:
    """Content key: the wallpaper folder for KDE-style packages, else the folder plus the stem without variants."""
    parts = rel.parts
    if "contents" in parts:
        return "/".join(parts[: parts.index("contents")])
    return "/".join(parts[:-1] + (_VARIANT.sub("", rel.stem),))


def _size(path: Path) -> tuple[int, int]:
    if path.suffix.lower() in VIDEO_EXTS:
        import av

        with av.open(str(path)) as c:
            s = c.streams.video[0]
            return s.codec_context.width, s.codec_context.height
    with Image.open(path) as im:
        return im.size


def candidates(root: Path | None = None) -> list[Candidate]:
    """One candidate per distinct content among the fetched files (largest variant wins)."""
    root = root or data_dir()
    best: dict[str, Candidate] = {}
    for path in _media_files(root):
        rel = path.relative_to(root)
        try:
            w, h = _size(path)
        except Exception:  # unreadable or exotic files are simply not candidates
            continue
        if min(w, h) < MIN_SIDE and path.suffix.lower() in IMAGE_EXTS:
            continue
        c = Candidate(rel.as_posix(), rel.parts[1], _group(rel), w, h, path.stat().st_size)
        if c.group not in best or w * h > best[c.group].width * best[c.group].height:
            best[c.group] = c
    return sorted(best.values(), key=lambda c: c.path)


def _media_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.glob("*/*/**/*")):
        rel = path.relative_to(root)
        if (path.is_file() and path.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS
                and not _SKIP_PARTS & set(rel.parts) and path.stem not in _EXCLUDE_STEMS):
            yield path


def contact_sheets(items: list[Candidate], out: Path, root: Path | None = None, per_sheet: int = 20,
                   thumb: int = 240) -> list[Path]:
    """Thumbnail sheets (numbered like ``items``) for tagging content by eye; returns the sheet files."""
    root = root or data_dir()
    out.mkdir(parents=True, exist_ok=True)
    sheets = []
    cols = 5
    for start in range(0, len(items), per_sheet):
        chunk = items[start:start + per_sheet]
        rows = (len(chunk) + cols - 1) // cols
        sheet = Image.new("RGB", (cols * thumb, rows * (thumb + 14)), "white")
        draw = ImageDraw.Draw(sheet)
        for i, c in enumerate(chunk):
            img = _thumbnail(root / c.path, thumb)
            x, y = (i % cols) * thumb, (i // cols) * (thumb + 14)
            sheet.paste(img, (x + (thumb - img.width) // 2, y + 14))
            draw.text((x + 2, y), f"{start + i} {Path(c.path).stem[:28]}", fill="black")
        path = out / f"sheet_{start // per_sheet:02d}.png"
        sheet.save(path)
        sheets.append(path)
    return sheets


def _thumbnail(path: Path, size: int) -> Image.Image:
    if path.suffix.lower() in VIDEO_EXTS:
        from common.media import read_frames, to_uint8

        img = Image.fromarray(to_uint8(next(read_frames(path)).data))
    else:
        img = Image.open(path).convert("RGB")
    img.thumbnail((size, size))
    return img

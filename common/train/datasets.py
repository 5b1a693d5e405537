"""Label readers for fine-tuning on a user's labelled images or videos.

Two kinds of input give the same :class:`Labels`:

- a generic CSV with a header row ``path,mos[,ref]`` (:func:`read_label_csv`);
- the folder of a public quality data set, laid out as its authors distribute it (:data:`PARSERS`, picked by
  :func:`detect`; :func:`read_labels` takes either).

Every score comes out as quality where higher is better, in the source's own units: a set that publishes DMOS
(higher = worse) is flipped within its nominal range, ``mos = scale_max + scale_min - dmos``, and nothing is rescaled
(``Labels.scale`` tells the caller how to map to 0-100). A row whose media file is missing or whose score is unusable
becomes a :class:`Problem` and is skipped; a missing or unreadable label file, or one that leaves no usable row,
raises ``ValueError``. Label files are read with the standard library, numpy and scipy only (a small reader covers
plain .xlsx tables); nothing is downloaded.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple
from xml.etree import ElementTree

import numpy as np
from scipy.io import loadmat
from scipy.io.matlab import MatReadError

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".bmp", ".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"})
VIDEO_EXTS = frozenset({".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".y4m"})
REPORT_LINES = 20  # problems listed by Labels.report before "... and K more"

CSV_PATH_HINT = "fix the path (relative paths are read from the CSV's folder) or remove the row"
CSV_VALUE_HINT = "fix the value or remove the row"
DOWNLOAD_HINT = "the download may be incomplete: restore the file, or train without it"
LABEL_FILE_HINT = "the label file may be damaged: extract it again from the data set's download"


@dataclass(frozen=True)
class LabelRow:
    """One labelled file: ``mos`` is quality (higher is better) in the source's units; ``ref`` its reference, if any."""

    path: Path
    mos: float
    ref: Path | None = None


@dataclass(frozen=True)
class Problem:
    """Something skipped while reading labels: where it is (file and line) and, in plain words, what to do."""

    where: str
    message: str


@dataclass
class Labels:
    """The usable rows of one label source, what was skipped, and the nominal range of ``mos``."""

    source: str
    rows: list[LabelRow]
    problems: list[Problem]
    scale: tuple[float, float]

    def report(self) -> str:
        """``N usable rows, M problems:`` then one line per problem (the first 20, then how many more)."""
        head = f"{len(self.rows)} usable rows, {len(self.problems)} problems"
        if not self.problems:
            return head + "."
        lines = [head + ":"] + [f"  {p.where}: {p.message}" for p in self.problems[:REPORT_LINES]]
        if len(self.problems) > REPORT_LINES:
            lines.append(f"  ... and {len(self.problems) - REPORT_LINES} more")
        return "\n".join(lines)


class _Collect:
    """Rows and problems gathered while one source is read."""

    def __init__(self) -> None:
        self.rows: list[LabelRow] = []
        self.problems: list[Problem] = []

    def skip(self, where: str, message: str) -> None:
        self.problems.append(Problem(where, message))

    def fields(self, where: str, cells: list[str], cols: dict[str, int], names: tuple[str, ...],
               hint: str) -> tuple[list[str], float] | None:
        """The values of ``names`` in one row, the last parsed as the score; None after recording why the row is
        unusable (a column missing or empty, a score that is not a finite number)."""
        values = [cells[cols[n]] if cols[n] < len(cells) else None for n in names]
        absent = [n for n, v in zip(names, values) if v is None]
        empty = [n for n, v in zip(names, values) if v == ""]
        if absent or empty:
            self.skip(where, f"the row has {len(cells)} fields, so no {', '.join(absent)} column; {hint}" if absent
                      else f"{', '.join(empty)} is empty; {hint}")
            return None
        try:
            score = float(values[-1])
        except ValueError:
            self.skip(where, f"the score {values[-1]!r} is not a number; {hint}")
            return None
        if not math.isfinite(score):
            self.skip(where, f"the score {values[-1]!r} is not a finite number; {hint}")
            return None
        return values[:-1], score

    def add(self, where: str, path: Path, mos: float, ref: Path | None = None, hint: str = DOWNLOAD_HINT) -> None:
        """Keep the row if its file (and reference) exist, else record which is missing."""
        if not path.is_file():
            self.skip(where, f"file {path} not found; {hint}")
        elif ref is not None and not ref.is_file():
            self.skip(where, f"reference {ref} not found; {hint}")
        else:
            self.rows.append(LabelRow(path.resolve(), float(mos), ref.resolve() if ref is not None else None))

    def finish(self, source: str, scale: tuple[float, float] | None) -> Labels:
        """The labels (``scale`` None: the range of the scores); ValueError with the report if no row is usable."""
        if scale is None:
            scores = [r.mos for r in self.rows]
            scale = (min(scores), max(scores)) if scores else (0.0, 0.0)
        labels = Labels(source, self.rows, self.problems, (float(scale[0]), float(scale[1])))
        if not self.rows:
            raise ValueError(f"{source}: no usable rows.\n{labels.report()}")
        log.info("%s: %s", source, labels.report().splitlines()[0])
        return labels


# ---------------------------------------------------------------------------------------------- tables and files


class _Table(NamedTuple):
    """A header row (stripped, lower-case, single spaces) and the data rows, each with where it sits in the file."""

    header: list[str]
    rows: list[tuple[str, list[str]]]


def _norm(cell: str) -> str:
    return " ".join(cell.strip().lower().split())


def _need_dir(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    return folder


def _need_file(path: Path, what: str,
               hint: str = "put the data set's label file there, as it is distributed") -> Path:
    if not path.is_file():
        raise ValueError(f"{path}: {what} not found; {hint}")
    return path


def _pick(candidates: list[Path]) -> Path:
    """The first candidate that exists, else the first (so a message names where it was expected)."""
    return next((p for p in candidates if p.exists()), candidates[0])


def _table_from(lines: list[tuple[str, list[str]]]) -> _Table:
    """Header = the first non-blank line; blank lines are dropped."""
    lines = [(where, cells) for where, cells in lines if any(c.strip() for c in cells)]
    if not lines:
        return _Table([], [])
    return _Table([_norm(c) for c in lines[0][1]], [(where, [c.strip() for c in cells]) for where, cells in lines[1:]])


def _read_csv(path: Path) -> _Table:
    """A UTF-8 CSV (with or without BOM); each row's ``where`` is ``<name> line <n>``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""))
        lines = [(f"{path.name} line {reader.line_num}", cells) for cells in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: cannot be read as a UTF-8 CSV file ({e})") from e
    return _table_from(lines)


_XL = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _xlsx_column(ref: str) -> int:
    """0-based column of a cell reference such as ``AB12``."""
    index = 0
    for ch in re.match(r"[A-Za-z]*", ref).group(0).upper():
        index = index * 26 + ord(ch) - ord("A") + 1
    return index - 1


def _shared_strings(z: zipfile.ZipFile) -> list[str]:
    """The workbook's shared-string table: a plain ``<t>`` or the concatenated rich-text runs of each entry."""
    if "xl/sharedStrings.xml" not in z.namelist():
        return []
    strings = []
    for si in ElementTree.fromstring(z.read("xl/sharedStrings.xml")).iter(_XL + "si"):
        plain = si.find(_XL + "t")
        runs = [plain] if plain is not None else si.findall(f"{_XL}r/{_XL}t")
        strings.append("".join(t.text or "" for t in runs))
    return strings


def _read_xlsx(path: Path, sheet: str | None = None) -> _Table:
    """One sheet of an .xlsx workbook (the one named ``sheet``, else the first) as text cells: shared and inline
    strings and numbers, enough for plain tables (formulas give their cached value; dates stay serial numbers).
    Each row's ``where`` is ``<name> sheet <sheet> row <n>``."""
    try:
        with zipfile.ZipFile(path) as z:
            shared = _shared_strings(z)
            sheets = [(s.get("name", ""), s.get(_DOC_REL + "id")) for s in
                      ElementTree.fromstring(z.read("xl/workbook.xml")).iter(_XL + "sheet")]
            targets = {r.get("Id"): r.get("Target", "") for r in
                       ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels")).iter(_PKG_REL + "Relationship")}
            name, rid = next((s for s in sheets if sheet and s[0].strip().lower() == sheet.lower()), sheets[0])
            target = targets[rid]
            data = ElementTree.fromstring(z.read(target.lstrip("/") if target.startswith("/") else "xl/" + target))
        lines = [_xlsx_row(row, n, shared, f"{path.name} sheet {name}")
                 for n, row in enumerate(data.iter(_XL + "row"), start=1)]
    except (OSError, zipfile.BadZipFile, KeyError, IndexError, ValueError, ElementTree.ParseError) as e:
        raise ValueError(f"{path}: not a readable .xlsx workbook ({type(e).__name__}: {e})") from e
    return _table_from(lines)


def _xlsx_row(row: ElementTree.Element, n: int, shared: list[str], where: str) -> tuple[str, list[str]]:
    """The text of one ``<row>``, gaps between referenced cells filled with empty strings."""
    cells: dict[int, str] = {}
    for c in row.iter(_XL + "c"):
        col = _xlsx_column(c.get("r")) if c.get("r") else (max(cells) + 1 if cells else 0)
        kind, value = c.get("t"), c.find(_XL + "v")
        if kind == "inlineStr":
            cells[col] = "".join(t.text or "" for t in c.iter(_XL + "t"))
        elif value is not None and kind == "s":
            cells[col] = shared[int(value.text)]
        elif value is not None:
            cells[col] = value.text or ""
    return f"{where} row {row.get('r', n)}", [cells.get(i, "") for i in range(max(cells) + 1 if cells else 0)]


def _read_table(path: Path, sheet: str | None = None) -> _Table:
    return _read_xlsx(path, sheet) if path.suffix.lower() == ".xlsx" else _read_csv(path)


def _columns(table: _Table, name: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, int]:
    """Index of each named column (names as normalised by :func:`_norm`); ValueError naming the expected header."""
    missing = [c for c in required if c not in table.header]
    if missing:
        expected = ",".join(required + tuple(f"[{c}]" for c in optional))
        raise ValueError(f"{name}: the header row has no column {', '.join(missing)}; expected a header row naming "
                         f"{expected} (any order, other columns ignored), found {','.join(table.header) or 'nothing'}")
    return {c: table.header.index(c) for c in required + optional if c in table.header}


def _load_mat(path: Path) -> dict[str, np.ndarray]:
    try:
        return loadmat(path)
    except NotImplementedError as e:
        raise ValueError(f"{path}: a MATLAB v7.3 (HDF5) file; re-save it in MATLAB with save(..., '-v7')") from e
    except (OSError, ValueError, TypeError, IndexError, MatReadError) as e:
        raise ValueError(f"{path}: not a readable .mat file ({e})") from e


def _mat_var(mat: dict[str, np.ndarray], path: Path, name: str) -> np.ndarray:
    if name not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "nothing"
        raise ValueError(f"{path}: no variable {name!r} (found {found}); is this the original label file?")
    return mat[name]


def _mat_strings(value: np.ndarray) -> list[str]:
    """The strings of a MATLAB cell array or char matrix, in order."""
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return [str(s).strip() for s in arr.ravel()]
    if arr.dtype == object:
        return [s for item in arr.ravel() for s in _mat_strings(item)]
    raise ValueError(f"expected text, found {arr.dtype} values")


def _mat_numbers(value: np.ndarray, path: Path, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: variable {name!r} does not hold numbers ({e})") from e


# ---------------------------------------------------------------------------------------------- generic CSV


def read_label_csv(path: str | Path) -> Labels:
    """Labels from a UTF-8 CSV (BOM or not) with a header row naming ``path``, ``mos`` and optionally ``ref`` in any
    order (other columns are ignored; cells are stripped). Relative paths are read from the CSV's folder. ``mos`` is
    taken as higher-is-better in whatever units the file uses; ``scale`` is the (min, max) of the usable scores.
    A row with a missing file, an empty, non-numeric or non-finite score or too few fields becomes a Problem and is
    skipped. ValueError if the file cannot be read, lacks the header, or leaves no usable row (the report says why).
    """
    path = Path(path)
    table = _read_csv(_need_file(path, "label CSV", "check the path"))
    cols = _columns(table, path.name, ("path", "mos"), ("ref",))
    out = _Collect()
    for where, cells in table.rows:
        got = out.fields(where, cells, cols, ("path", "mos"), CSV_VALUE_HINT)
        if got is None:
            continue
        (name,), mos = got
        ref = cells[cols["ref"]] if "ref" in cols and cols["ref"] < len(cells) else ""
        out.add(where, _resolve(path.parent, name), mos, _resolve(path.parent, ref) if ref else None, CSV_PATH_HINT)
    return out.finish(f"{path.name} (path,mos[,ref])", None)


def _resolve(base: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p


# ---------------------------------------------------------------------------------------------- public data sets


KONIQ_CSV = "koniq10k_scores_and_distributions.csv"
KONIQ_IMAGE_DIRS = ("1024x768", "512x384")


def parse_koniq10k(folder: Path) -> Labels:
    """KonIQ-10k: 10,073 in-the-wild photos (Hosu, Lin, Sziranyi & Saupe, "KonIQ-10k: An ecologically valid database
    for deep learning of blind image quality assessment", IEEE TIP 29, 2020).

    Layout: ``koniq10k_scores_and_distributions.csv`` in the folder, images in ``1024x768/`` (an image missing there
    is looked for in ``512x384/``, the half-size release). Columns read: ``image_name`` and ``MOS``, the mean of
    5-point ACR ratings, higher is better; ``MOS_zscore`` (a 0-100 rescaling) is not used. Scale (1, 5).
    """
    folder = _need_dir(folder)
    table = _read_csv(_need_file(folder / KONIQ_CSV, "KonIQ-10k score file"))
    cols = _columns(table, KONIQ_CSV, ("image_name", "mos"))
    out = _Collect()
    for where, cells in table.rows:
        got = out.fields(where, cells, cols, ("image_name", "mos"), LABEL_FILE_HINT)
        if got is not None:
            (name,), mos = got
            out.add(where, _pick([folder / d / name for d in KONIQ_IMAGE_DIRS]), mos)
    return out.finish(f"KonIQ-10k at {folder}", (1.0, 5.0))


def parse_kadid10k(folder: Path) -> Labels:
    """KADID-10k: 81 references x 25 synthetic distortions x 5 levels (Lin, Hosu & Saupe, "KADID-10k: A large-scale
    artificially distorted IQA database", QoMEX 2019).

    Layout: ``dmos.csv`` and ``images/`` holding both the distorted images (``I01_01_01.png``) and the references
    (``I01.png``). Columns read: ``dist_img``, ``ref_img`` (fills ``ref``) and ``dmos``; ``var`` is ignored. Despite
    its name the ``dmos`` column is already higher-is-better: it is the mean of degradation category ratings (ITU-T
    P.910 DCR, 5 "imperceptible" ... 1 "very annoying"), and the database page states that a high DMOS means high
    visual quality, so it is kept as it is, not flipped. Scale (1, 5).
    """
    folder = _need_dir(folder)
    table = _read_csv(_need_file(folder / "dmos.csv", "KADID-10k score file"))
    cols = _columns(table, "dmos.csv", ("dist_img", "ref_img", "dmos"))
    out = _Collect()
    for where, cells in table.rows:
        got = out.fields(where, cells, cols, ("dist_img", "ref_img", "dmos"), LABEL_FILE_HINT)
        if got is not None:
            (dist, ref), mos = got
            out.add(where, folder / "images" / dist, mos, folder / "images" / ref)
    return out.finish(f"KADID-10k at {folder}", (1.0, 5.0))


def parse_clive(folder: Path) -> Labels:
    """LIVE In the Wild Image Quality Challenge (CLIVE): 1,162 mobile photos (Ghadiyaram & Bovik, "Massive online
    crowdsourced study of subjective and objective picture quality", IEEE TIP 25(1), 2016).

    Layout: ``Data/AllImages_release.mat`` (cell array ``AllImages_release`` of file names) and
    ``Data/AllMOS_release.mat`` (``AllMOS_release``, one MOS per name in the same order), images in ``Images/``.
    MOS is the mean of continuous 0-100 ratings, higher is better; scale (0, 100). The first seven names,
    ``t1.bmp``...``t7.bmp``, are the study's training images and sit in ``Images/trainingImages/``; they carry MOS
    like the others and are kept (papers that report on "the 1,162 images" drop them).
    """
    folder = _need_dir(folder)
    names_mat = _need_file(folder / "Data" / "AllImages_release.mat", "CLIVE image list")
    mos_mat = _need_file(folder / "Data" / "AllMOS_release.mat", "CLIVE MOS file")
    try:
        names = _mat_strings(_mat_var(_load_mat(names_mat), names_mat, "AllImages_release"))
    except ValueError as e:
        raise ValueError(f"{names_mat}: cannot read the image names ({e})") from e
    scores = _mat_numbers(_mat_var(_load_mat(mos_mat), mos_mat, "AllMOS_release"), mos_mat, "AllMOS_release").ravel()
    if len(names) != len(scores):
        raise ValueError(f"{folder / 'Data'}: {len(names)} image names but {len(scores)} MOS values; the two .mat "
                         "files must come from the same release")
    out = _Collect()
    images = folder / "Images"
    for i, (name, mos) in enumerate(zip(names, scores), start=1):
        where = f"AllMOS_release.mat entry {i} ({name})"
        if math.isfinite(mos):
            out.add(where, _pick([images / name, images / "trainingImages" / name]), mos)
        else:
            out.skip(where, f"the MOS is {mos}, not a finite number; {LABEL_FILE_HINT}")
    return out.finish(f"LIVE In the Wild Challenge at {folder}", (0.0, 100.0))


KONVID_CSV = "KoNViD_1k_attributes.csv"


def parse_konvid1k(folder: Path) -> Labels:
    """KoNViD-1k: 1,200 Flickr videos (Hosu et al., "The Konstanz natural video database (KoNViD-1k)", QoMEX 2017).

    Layout: ``KoNViD_1k_attributes.csv`` in the folder (or in ``KoNViD_1k_metadata/``, as its zip extracts), videos
    in ``KoNViD_1k_videos/``. Columns read: ``flickr_id``, ``MOS`` and, when present, ``file_name``. A video is
    looked up as ``<flickr_id>.mp4`` (the current release) and then by ``file_name`` (the first release named files
    like ``<flickr_id>_original_centercrop_960x540_8s.mp4``). MOS is the mean of 5-point ACR ratings, higher is
    better. Scale (1, 5).
    """
    folder = _need_dir(folder)
    path = _need_file(_pick([folder / KONVID_CSV, folder / "KoNViD_1k_metadata" / KONVID_CSV]),
                      "KoNViD-1k attribute file")
    table = _read_csv(path)
    cols = _columns(table, KONVID_CSV, ("flickr_id", "mos"), ("file_name",))
    videos = folder / "KoNViD_1k_videos"
    out = _Collect()
    for where, cells in table.rows:
        got = out.fields(where, cells, cols, ("flickr_id", "mos"), LABEL_FILE_HINT)
        if got is None:
            continue
        (flickr_id,), mos = got
        candidates = [videos / f"{flickr_id}.mp4"]
        if "file_name" in cols and cols["file_name"] < len(cells) and cells[cols["file_name"]]:
            candidates.append(videos / cells[cols["file_name"]])
        out.add(where, _pick(candidates), mos)
    return out.finish(f"KoNViD-1k at {folder}", (1.0, 5.0))


def parse_live_vqc(folder: Path) -> Labels:
    """LIVE Video Quality Challenge (LIVE-VQC): 585 mobile videos (Sinno & Bovik, "Large-scale study of perceptual
    video quality", IEEE TIP 28(2), 2019).

    Layout: ``data.mat`` holding ``video_list`` (cell array of file names such as ``A001.mp4``) and ``mos`` (one per
    name, same order), videos in ``Video/``. MOS is the mean of continuous ratings on a 0-100 scale (observed range
    about 6-94), higher is better. Scale (0, 100).
    """
    folder = _need_dir(folder)
    path = _need_file(folder / "data.mat", "LIVE-VQC data.mat")
    mat = _load_mat(path)
    try:
        names = _mat_strings(_mat_var(mat, path, "video_list"))
    except ValueError as e:
        raise ValueError(f"{path}: cannot read video_list ({e})") from e
    scores = _mat_numbers(_mat_var(mat, path, "mos"), path, "mos").ravel()
    if len(names) != len(scores):
        raise ValueError(f"{path}: {len(names)} names in video_list but {len(scores)} values in mos")
    out = _Collect()
    for i, (name, mos) in enumerate(zip(names, scores), start=1):
        where = f"data.mat entry {i} ({name})"
        if math.isfinite(mos):
            out.add(where, folder / "Video" / name, mos)
        else:
            out.skip(where, f"the MOS is {mos}, not a finite number; {LABEL_FILE_HINT}")
    return out.finish(f"LIVE-VQC at {folder}", (0.0, 100.0))


UGC_MOS = "original_videos_MOS_for_YouTube_UGC_dataset"
_TRANSCODE = re.compile(r"_crf_\d+_ss_\d+_t_[\d.]+$")


def parse_youtube_ugc(folder: Path) -> Labels:
    """YouTube UGC: about 1,500 20-s user videos (Wang, Inguva & Adsumilli, "YouTube UGC dataset for video
    compression research", IEEE MMSP 2019).

    Layout: ``original_videos_MOS_for_YouTube_UGC_dataset.xlsx`` (or a ``.csv`` export of it) in the folder, videos
    anywhere below it (the release nests them as ``original_videos/<category>/<resolution>/<vid>.mkv``). Reads the
    sheet named ``MOS`` (else the first), columns ``vid`` and ``MOS full`` (the score of the whole clip; a column
    ``MOS`` is used if there is no ``MOS full``). A video is found by file stem, searching the folder recursively;
    an H.264 transcode named ``<vid>_crf_10_ss_00_t_20.0.mp4`` is used when the original is absent. MOS is the mean
    of 5-point ACR ratings, higher is better. Scale (1, 5).
    """
    folder = _need_dir(folder)
    path = _need_file(_pick([folder / f"{UGC_MOS}.xlsx", folder / f"{UGC_MOS}.csv"]), "YouTube-UGC MOS workbook")
    table = _read_table(path, sheet="MOS")
    score_col = "mos full" if "mos full" in table.header else "mos"
    cols = _columns(table, path.name, ("vid", score_col))
    originals: dict[str, Path] = {}
    transcodes: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in VIDEO_EXTS and p.is_file():
            stem = _TRANSCODE.sub("", p.stem)
            (originals if stem == p.stem else transcodes).setdefault(stem, p)
    out = _Collect()
    for where, cells in table.rows:
        got = out.fields(where, cells, cols, ("vid", score_col), LABEL_FILE_HINT)
        if got is None:
            continue
        (vid,), mos = got
        video = originals.get(vid) or transcodes.get(vid)
        if video is None:
            out.skip(where, f"no video {vid}.* under {folder}; {DOWNLOAD_HINT}")
        else:
            out.add(where, video, mos)
    return out.finish(f"YouTube-UGC at {folder}", (1.0, 5.0))


SIQAD_LABEL_FILES = ("DMOS.mat", "DMOS_SIQAD.mat", "DMOS.csv", "DMOS.xlsx")
SIQAD_REFS, SIQAD_TYPES, SIQAD_LEVELS = 20, 7, 7
SIQAD_SCALE = (0.0, 100.0)


def _numeric_grid(table: _Table) -> np.ndarray:
    """The numbers of a table, dropping rows and columns with no number at all (a text header or label column)."""
    lines = [table.header] + [cells for _, cells in table.rows]
    grid = np.full((len(lines), max((len(r) for r in lines), default=0)), np.nan)
    for i, cells in enumerate(lines):
        for j, cell in enumerate(cells):
            try:
                grid[i, j] = float(cell)
            except ValueError:
                pass
    grid = grid[~np.isnan(grid).all(axis=1)]
    return grid[:, ~np.isnan(grid).all(axis=0)]


def parse_siqad(folder: Path) -> Labels:
    """SIQAD, screen content: 20 references x 7 distortions x 7 levels (Yang, Fang & Lin, "Perceptual quality
    assessment of screen content images", IEEE TIP 24(11), 2015).

    Layout: ``references/cim<r>.bmp`` and ``DistortedImages/cim<r>_<d>_<l>.bmp`` (reference r = 1..20, distortion
    d = 1..7, level l = 1..7). The DMOS table is a 49 x 20 matrix, row ``(d - 1) * 7 + l``, column ``r``, read from
    the first of ``DMOS.mat`` / ``DMOS_SIQAD.mat`` (variable ``DMOS``), ``DMOS.csv`` or ``DMOS.xlsx`` (first sheet);
    text header rows or label columns are ignored and a 20 x 49 table is transposed. The release's own label-file
    name could not be confirmed; these are the names and the layout public code uses. DMOS is on a nominal 0-100
    scale where higher is worse, so it is flipped: ``mos = 100 + 0 - dmos``. Scale (0, 100); ``ref`` is filled.
    """
    folder = _need_dir(folder)
    path = _need_file(_pick([folder / n for n in SIQAD_LABEL_FILES]),
                      f"SIQAD DMOS file ({' or '.join(SIQAD_LABEL_FILES)})")
    if path.suffix.lower() == ".mat":
        dmos = _mat_numbers(_mat_var(_load_mat(path), path, "DMOS"), path, "DMOS")
    else:
        dmos = _numeric_grid(_read_table(path))
    rows = SIQAD_TYPES * SIQAD_LEVELS
    if dmos.shape == (SIQAD_REFS, rows):
        dmos = dmos.T
    if dmos.shape != (rows, SIQAD_REFS):
        raise ValueError(f"{path}: expected a {rows} x {SIQAD_REFS} DMOS matrix (rows: distortion x level, columns: "
                         f"reference image), found shape {dmos.shape}")
    lo, hi = SIQAD_SCALE
    out = _Collect()
    for r in range(1, SIQAD_REFS + 1):
        for d in range(1, SIQAD_TYPES + 1):
            for lv in range(1, SIQAD_LEVELS + 1):
                row = (d - 1) * SIQAD_LEVELS + lv
                name = f"cim{r}_{d}_{lv}.bmp"
                where = f"{path.name} row {row}, column {r} ({name})"
                value = dmos[row - 1, r - 1]
                ref = folder / "references" / f"cim{r}.bmp"
                if math.isfinite(value):
                    out.add(where, folder / "DistortedImages" / name, hi + lo - value, ref)
                else:
                    out.skip(where, f"no DMOS value; {LABEL_FILE_HINT}")
    return out.finish(f"SIQAD at {folder}", SIQAD_SCALE)


def _unnest(folder: Path) -> Path:
    """``x/x`` when an archive extracted into a folder of its own name, else ``x``."""
    return folder / folder.name if (folder / folder.name).is_dir() else folder


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def parse_uieb(folder: Path) -> Labels:
    """UIEB, underwater: 890 raw photos with chosen enhanced references (Li et al., "An underwater image enhancement
    benchmark dataset and beyond", IEEE TIP 29, 2020).

    Layout: ``raw-890/`` (raw underwater photos) and ``reference-890/`` (the enhancement volunteers preferred, same
    file names; matched by stem); either may be nested once (``raw-890/raw-890/``) as some archives extract. UIEB has
    no opinion scores, so these labels are a teacher proxy, not human opinion: each raw image gets the fused
    full-reference teacher (:func:`common.data.teacher.fused_label`, 0-100) against its reference, the raw image
    resized to the reference's size when they differ, with ``ref`` set; each reference gets 100. Scale (0, 100),
    higher is better. ``challenging-60/`` has no references and is skipped with one Problem. The teacher runs once per
    pair, so the full set takes minutes.
    """
    from PIL import Image

    from common.data.teacher import fused_label

    folder = _need_dir(folder)
    raw_dir, ref_dir = _unnest(folder / "raw-890"), _unnest(folder / "reference-890")
    for d in (raw_dir, ref_dir):
        if not d.is_dir():
            raise ValueError(f"{d}: UIEB folder not found; expected raw-890/ and reference-890/ in {folder}")
    refs = _images_in(ref_dir)
    by_stem = {p.stem: p for p in refs}
    out = _Collect()
    raws = _images_in(raw_dir)
    for i, raw in enumerate(raws, start=1):
        where = f"{raw_dir.name}/{raw.name}"
        ref = by_stem.get(raw.stem)
        if ref is None:
            out.skip(where, f"no reference named {raw.stem}.* in {ref_dir}; {DOWNLOAD_HINT}")
            continue
        try:
            with Image.open(raw) as dist_img, Image.open(ref) as ref_img:
                ref_rgb = ref_img.convert("RGB")
                dist_rgb = dist_img.convert("RGB")
            if dist_rgb.size != ref_rgb.size:
                dist_rgb = dist_rgb.resize(ref_rgb.size, Image.Resampling.BICUBIC)
            mos = fused_label(np.array(dist_rgb, dtype=np.uint8), np.array(ref_rgb, dtype=np.uint8)).fused
        except (OSError, ValueError) as e:
            out.skip(where, f"cannot be labelled by the teacher ({e}); check the pair, or train without it")
            continue
        out.add(where, raw, mos, ref)
        if i % 100 == 0:
            log.info("UIEB: teacher-labelled %d of %d raw images", i, len(raws))
    for ref in refs:
        out.add(f"{ref_dir.name}/{ref.name}", ref, 100.0)
    if (folder / "challenging-60").is_dir():
        out.skip("challenging-60/", "skipped: these images have no reference, so the teacher cannot label them; "
                                    "rate them yourself in a path,mos CSV to train on them")
    return out.finish(f"UIEB (teacher labels, not human opinion) at {folder}", (0.0, 100.0))


# ---------------------------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class _Layout:
    """A parser and the files that identify its folder: any one alternative, each a set of paths that must all
    exist (a trailing ``/`` marks a folder)."""

    parse: Callable[[Path], Labels]
    markers: tuple[tuple[str, ...], ...]

    def matches(self, folder: Path) -> bool:
        return any(all((folder / m).is_dir() if m.endswith("/") else (folder / m).is_file() for m in alt)
                   for alt in self.markers)

    def describe(self) -> str:
        return " or ".join(" + ".join(alt) for alt in self.markers)


_LAYOUTS: dict[str, _Layout] = {
    "koniq10k": _Layout(parse_koniq10k, ((KONIQ_CSV,),)),
    "siqad": _Layout(parse_siqad, (("DistortedImages/", "references/"),)),
    "kadid10k": _Layout(parse_kadid10k, (("dmos.csv", "images/"),)),
    "clive": _Layout(parse_clive, (("Data/AllImages_release.mat", "Data/AllMOS_release.mat"),)),
    "konvid1k": _Layout(parse_konvid1k, ((KONVID_CSV,), (f"KoNViD_1k_metadata/{KONVID_CSV}",))),
    "live-vqc": _Layout(parse_live_vqc, (("data.mat", "Video/"),)),
    "youtube-ugc": _Layout(parse_youtube_ugc, ((f"{UGC_MOS}.xlsx",), (f"{UGC_MOS}.csv",))),
    "uieb": _Layout(parse_uieb, (("raw-890/", "reference-890/"),)),
}

PARSERS: dict[str, Callable[[Path], Labels]] = {name: layout.parse for name, layout in _LAYOUTS.items()}


def _known_layouts() -> str:
    """One line per supported data set: its PARSERS key and the files that identify its folder."""
    return "\n".join(f"  {name}: {layout.describe()}" for name, layout in _LAYOUTS.items())


def detect(folder: Path) -> str | None:
    """The :data:`PARSERS` key whose characteristic files ``folder`` holds, or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    return next((name for name, layout in _LAYOUTS.items() if layout.matches(folder)), None)


def read_labels(path: str | Path) -> Labels:
    """Labels from a ``path,mos[,ref]`` CSV file (:func:`read_label_csv`) or from the folder of a known public data
    set (:func:`detect`, then its parser). ValueError naming the known layouts for anything else."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_label_csv(path)
    name = detect(path)
    if name is not None:
        log.info("%s: reading it as %s", path, name)
        return PARSERS[name](path)
    why = ("does not exist" if not path.exists() else "is a folder of no known data set layout" if path.is_dir()
           else "is not a .csv file")
    raise ValueError(f"{path} {why}. Give a CSV with a header row path,mos[,ref], or the folder of one of these "
                     f"data sets, as distributed (identified by the files listed):\n{_known_layouts()}")

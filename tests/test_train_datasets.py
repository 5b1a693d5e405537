"""Label readers: the generic path,mos[,ref] CSV and each public data set layout, on tiny synthetic folders."""
from __future__ import annotations

import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from common.train.datasets import PARSERS, LabelRow, Labels, Problem, detect, read_label_csv, read_labels


def _image(path: Path, size: tuple[int, int] = (8, 6), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _video(path: Path) -> Path:
    """Any bytes with a video extension: the readers only check paths, never decode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    return path


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def _cell_ref(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return f"{letters}{row}"


def _xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A minimal workbook: header strings inline, other strings shared, numbers as values."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel_ns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    shared: list[str] = []
    parts: dict[str, str] = {}
    for k, rows in enumerate(sheets.values(), start=1):
        xml_rows = []
        for i, row in enumerate(rows, start=1):
            cells = []
            for j, value in enumerate(row):
                ref = _cell_ref(i, j)
                if isinstance(value, str) and i == 1:
                    cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
                elif isinstance(value, str):
                    shared.append(value)
                    cells.append(f'<c r="{ref}" t="s"><v>{len(shared) - 1}</v></c>')
                else:
                    cells.append(f'<c r="{ref}"><v>{value}</v></c>')
            xml_rows.append(f'<row r="{i}">{"".join(cells)}</row>')
        parts[f"xl/worksheets/sheet{k}.xml"] = f'<worksheet {ns}><sheetData>{"".join(xml_rows)}</sheetData></worksheet>'
    sheet_list = "".join(f'<sheet name="{escape(n)}" sheetId="{k}" r:id="rId{k}"/>' for k, n in enumerate(sheets, 1))
    parts["xl/workbook.xml"] = f"<workbook {ns} {rel_ns}><sheets>{sheet_list}</sheets></workbook>"
    rels = "".join(f'<Relationship Id="rId{k}" Target="worksheets/sheet{k}.xml" Type="http://schemas.openxmlformats.'
                   f'org/officeDocument/2006/relationships/worksheet"/>' for k in range(1, len(sheets) + 1))
    parts["xl/_rels/workbook.xml.rels"] = (
        f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>')
    parts["xl/sharedStrings.xml"] = f'<sst {ns}>{"".join(f"<si><t>{escape(s)}</t></si>" for s in shared)}</sst>'
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, text in parts.items():
            z.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>' + text)
    return path


def _by_name(labels: Labels) -> dict[str, LabelRow]:
    return {r.path.name: r for r in labels.rows}


def _wheres(labels: Labels) -> list[str]:
    return [p.where for p in labels.problems]


# ---------------------------------------------------------------------------------------------- generic CSV


def test_csv_reads_relative_and_absolute_paths_and_refs(tmp_path: Path) -> None:
    a = _image(tmp_path / "imgs" / "a.png")
    b = _image(tmp_path / "elsewhere" / "b.png", seed=1)
    r = _image(tmp_path / "imgs" / "ref.png", seed=2)
    csv_path = _write(tmp_path / "labels.csv", f"path,mos,ref\nimgs/a.png,3.5,imgs/ref.png\n{b},72,\n")
    labels = read_label_csv(csv_path)
    assert labels.problems == []
    assert labels.rows == [LabelRow(a.resolve(), 3.5, r.resolve()), LabelRow(b.resolve(), 72.0, None)]
    assert all(row.path.is_absolute() for row in labels.rows)
    assert labels.scale == (3.5, 72.0)
    assert labels.source.startswith("labels.csv")
    assert labels.report() == "2 usable rows, 0 problems."


def test_csv_reports_bad_rows_as_problems_and_keeps_the_rest(tmp_path: Path) -> None:
    for name in ("ok1.png", "ok2.png", "x.png", "y.png", "z.png"):
        _image(tmp_path / name)
    text = ("path,mos,ref\n"
            "ok1.png,4.0\n"            # line 2: fine (short row, no ref)
            "gone.png,3.0\n"           # line 3: missing file
            "x.png,good\n"             # line 4: non-numeric score
            "y.png,\n"                 # line 5: empty score
            "z.png,inf\n"              # line 6: not finite
            "ok2.png\n"                # line 7: no mos column
            "ok2.png,2,nope.png\n"     # line 8: missing reference
            "ok2.png,1.5,ok1.png\n")   # line 9: fine
    labels = read_label_csv(_write(tmp_path / "labels.csv", text))
    assert [(r.path.name, r.mos, r.ref.name if r.ref else None) for r in labels.rows] == [
        ("ok1.png", 4.0, None), ("ok2.png", 1.5, "ok1.png")]
    assert _wheres(labels) == [f"labels.csv line {n}" for n in (3, 4, 5, 6, 7, 8)]
    messages = [p.message for p in labels.problems]
    assert "not found" in messages[0] and "gone.png" in messages[0]
    assert "'good' is not a number" in messages[1]
    assert "mos is empty" in messages[2]
    assert "not a finite number" in messages[3]
    assert "no mos column" in messages[4]
    assert "reference" in messages[5] and "nope.png" in messages[5]
    report = labels.report()
    assert report.splitlines()[0] == "2 usable rows, 6 problems:"
    assert "labels.csv line 4: the score 'good' is not a number" in report


def test_csv_without_the_header_is_refused(tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"path,mos,\[ref\]"):
        read_label_csv(_write(tmp_path / "labels.csv", "a.png,3.0\n"))
    with pytest.raises(ValueError, match="no column mos"):
        read_label_csv(_write(tmp_path / "labels.csv", "path,score\na.png,3.0\n"))
    with pytest.raises(ValueError, match="no column path, mos"):
        read_label_csv(_write(tmp_path / "empty.csv", ""))
    with pytest.raises(ValueError, match="not found"):
        read_label_csv(tmp_path / "absent.csv")


def test_csv_with_no_usable_row_raises_with_the_report(tmp_path: Path) -> None:
    csv_path = _write(tmp_path / "labels.csv", "path,mos\ngone.png,3\nalso_gone.png,4\n")
    with pytest.raises(ValueError) as info:
        read_label_csv(csv_path)
    message = str(info.value)
    assert "0 usable rows, 2 problems:" in message
    assert "labels.csv line 2" in message and "labels.csv line 3" in message


def test_csv_handles_bom_column_order_whitespace_and_extra_columns(tmp_path: Path) -> None:
    a = _image(tmp_path / "a b.png")
    text = "\ufeff note , MOS ,Path\n x , 2.25 , a b.png \n\n"
    labels = read_label_csv(_write(tmp_path / "labels.csv", text, encoding="utf-8"))
    assert labels.rows == [LabelRow(a.resolve(), 2.25)]
    assert labels.problems == []


def test_report_lists_twenty_problems_then_counts_the_rest() -> None:
    labels = Labels("x", [], [Problem(f"f line {i}", "bad") for i in range(25)], (0.0, 1.0))
    lines = labels.report().splitlines()
    assert lines[0] == "0 usable rows, 25 problems:"
    assert len(lines) == 1 + 20 + 1 and lines[-1].strip() == "... and 5 more"


# ---------------------------------------------------------------------------------------------- data sets


def test_koniq10k(tmp_path: Path) -> None:
    _write(tmp_path / "koniq10k_scores_and_distributions.csv",
           "image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore\n"
           "1.jpg,0,1,2,1,1,5,3.9,0.8,70.1\n2.jpg,1,1,1,1,1,5,2.1,1.1,30.2\n3.jpg,0,0,1,2,2,5,4.2,0.7,80.0\n")
    _image(tmp_path / "1024x768" / "1.jpg")
    _image(tmp_path / "512x384" / "2.jpg")  # only the half-size copy: found there
    assert detect(tmp_path) == "koniq10k"
    labels = read_labels(tmp_path)
    rows = _by_name(labels)
    assert set(rows) == {"1.jpg", "2.jpg"} and rows["1.jpg"].mos == 3.9 and rows["1.jpg"].ref is None
    assert rows["2.jpg"].path.parent.name == "512x384"
    assert labels.scale == (1.0, 5.0)
    assert _wheres(labels) == ["koniq10k_scores_and_distributions.csv line 4"]
    assert "3.jpg" in labels.problems[0].message


def test_kadid10k_keeps_its_higher_is_better_dmos_and_fills_ref(tmp_path: Path) -> None:
    _write(tmp_path / "dmos.csv", "dist_img,ref_img,dmos,var\nI01_01_01.png,I01.png,4.57,0.49\n"
                                  "I01_01_05.png,I01.png,1.23,0.31\nI02_01_01.png,I02.png,3.0,0.2\n")
    for name in ("I01.png", "I01_01_01.png", "I01_01_05.png", "I02_01_01.png"):
        _image(tmp_path / "images" / name)
    assert detect(tmp_path) == "kadid10k"
    labels = PARSERS["kadid10k"](tmp_path)
    rows = _by_name(labels)
    assert rows["I01_01_01.png"].mos == 4.57 and rows["I01_01_05.png"].mos == 1.23  # not flipped
    assert rows["I01_01_01.png"].ref == (tmp_path / "images" / "I01.png").resolve()
    assert labels.scale == (1.0, 5.0)
    assert _wheres(labels) == ["dmos.csv line 4"] and "I02.png" in labels.problems[0].message


def test_clive_reads_the_mat_files_and_finds_training_images(tmp_path: Path) -> None:
    names = np.empty((3, 1), dtype=object)
    names[:, 0] = ["t1.bmp", "100.bmp", "101.bmp"]
    (tmp_path / "Data").mkdir()
    savemat(tmp_path / "Data" / "AllImages_release.mat", {"AllImages_release": names})
    savemat(tmp_path / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.array([[63.9, 32.5, 66.4]])})
    _image(tmp_path / "Images" / "trainingImages" / "t1.bmp")
    _image(tmp_path / "Images" / "100.bmp")
    assert detect(tmp_path) == "clive"
    labels = read_labels(tmp_path)
    rows = _by_name(labels)
    assert rows["t1.bmp"].mos == pytest.approx(63.9) and rows["t1.bmp"].path.parent.name == "trainingImages"
    assert rows["100.bmp"].mos == pytest.approx(32.5)
    assert labels.scale == (0.0, 100.0)
    assert _wheres(labels) == ["AllMOS_release.mat entry 3 (101.bmp)"]


def test_konvid1k_finds_both_video_namings(tmp_path: Path) -> None:
    _write(tmp_path / "KoNViD_1k_metadata" / "KoNViD_1k_attributes.csv",  # where the metadata zip extracts
           "flickr_id,download_id,file_name,MOS,ti,si\n"
           "8536919744,1015445,8536919744_original_centercrop_960x540_8s.mp4,1.22,4.5,14.4\n"
           "6408325533,964070,6408325533_original_centercrop_960x540_8s.mp4,3.26,53.2,52.8\n"
           "5319047612,927528,5319047612_cut_centercrop_960x540_8s.mp4,4.3,38.6,61.5\n")
    _video(tmp_path / "KoNViD_1k_videos" / "8536919744.mp4")
    _video(tmp_path / "KoNViD_1k_videos" / "6408325533_original_centercrop_960x540_8s.mp4")
    assert detect(tmp_path) == "konvid1k"
    labels = read_labels(tmp_path)
    assert [(r.path.name, r.mos) for r in labels.rows] == [
        ("8536919744.mp4", 1.22), ("6408325533_original_centercrop_960x540_8s.mp4", 3.26)]
    assert labels.scale == (1.0, 5.0)
    assert _wheres(labels) == ["KoNViD_1k_attributes.csv line 4"]


def test_live_vqc(tmp_path: Path) -> None:
    names = np.empty((3, 1), dtype=object)
    names[:, 0] = ["A001.mp4", "A002.mp4", "B003.mp4"]
    savemat(tmp_path / "data.mat", {"video_list": names, "mos": np.array([[80.2], [15.5], [50.0]])})
    _video(tmp_path / "Video" / "A001.mp4")
    _video(tmp_path / "Video" / "A002.mp4")
    assert detect(tmp_path) == "live-vqc"
    labels = read_labels(tmp_path)
    assert [(r.path.name, r.mos) for r in labels.rows] == [("A001.mp4", pytest.approx(80.2)),
                                                            ("A002.mp4", pytest.approx(15.5))]
    assert labels.scale == (0.0, 100.0)
    assert _wheres(labels) == ["data.mat entry 3 (B003.mp4)"]


def test_youtube_ugc_reads_the_mos_sheet_and_searches_videos_by_stem(tmp_path: Path) -> None:
    _xlsx(tmp_path / "original_videos_MOS_for_YouTube_UGC_dataset.xlsx", {
        "diff2": [["vid", "MOS full"], ["Gaming_360P-1a2b", 1.0]],
        "MOS": [["vid", "category", "MOS full", "MOS chunk00"],
                ["Gaming_360P-1a2b", "Gaming", 3.75, 3.5],
                ["Vlog_720P-3c4d", "Vlog", 4.1, 4.0],
                ["Sports_1080P-5e6f", "Sports", 2.2, 2.0],
                ["HDR_2160P-7a8b", "HDR", "n/a", 1.0]],
    })
    _video(tmp_path / "original_videos" / "Gaming" / "360P" / "Gaming_360P-1a2b.mkv")
    _video(tmp_path / "h264" / "Vlog_720P-3c4d_crf_10_ss_00_t_20.0.mp4")
    _video(tmp_path / "original_videos" / "HDR" / "2160P" / "HDR_2160P-7a8b.mkv")
    assert detect(tmp_path) == "youtube-ugc"
    labels = read_labels(tmp_path)
    assert [(r.path.name, r.mos) for r in labels.rows] == [
        ("Gaming_360P-1a2b.mkv", 3.75), ("Vlog_720P-3c4d_crf_10_ss_00_t_20.0.mp4", 4.1)]
    assert labels.scale == (1.0, 5.0)
    sheet = "original_videos_MOS_for_YouTube_UGC_dataset.xlsx sheet MOS"
    assert _wheres(labels) == [f"{sheet} row 4", f"{sheet} row 5"]
    assert "Sports_1080P-5e6f" in labels.problems[0].message and "'n/a'" in labels.problems[1].message


def _siqad_images(root: Path) -> None:
    _image(root / "references" / "cim1.bmp")
    _image(root / "DistortedImages" / "cim1_1_1.bmp", seed=1)
    _image(root / "DistortedImages" / "cim1_2_3.bmp", seed=2)


def test_siqad_flips_dmos_and_fills_ref(tmp_path: Path) -> None:
    _siqad_images(tmp_path)
    dmos = np.full((49, 20), 50.0)
    dmos[0, 0] = 30.0     # cim1_1_1: mild distortion, low DMOS
    dmos[9, 0] = 80.0     # row (2 - 1) * 7 + 3 = 10: cim1_2_3, strong distortion
    savemat(tmp_path / "DMOS.mat", {"DMOS": dmos})
    assert detect(tmp_path) == "siqad"
    labels = read_labels(tmp_path)
    rows = _by_name(labels)
    assert set(rows) == {"cim1_1_1.bmp", "cim1_2_3.bmp"}
    assert rows["cim1_1_1.bmp"].mos == 70.0 and rows["cim1_2_3.bmp"].mos == 20.0  # 100 + 0 - dmos
    assert rows["cim1_1_1.bmp"].ref == (tmp_path / "references" / "cim1.bmp").resolve()
    assert labels.scale == (0.0, 100.0)
    assert len(labels.problems) == 980 - 2 and labels.report().endswith(f"... and {978 - 20} more")
    assert labels.problems[0].where == "DMOS.mat row 2, column 1 (cim1_1_2.bmp)"


def test_siqad_reads_a_transposed_csv_table_with_a_header(tmp_path: Path) -> None:
    _siqad_images(tmp_path)
    dmos = np.full((20, 49), 50.0)
    dmos[0, 0] = 25.0
    lines = ["," + ",".join(f"d{k}" for k in range(1, 50))]
    lines += [f"cim{r + 1}," + ",".join(str(v) for v in dmos[r]) for r in range(20)]
    _write(tmp_path / "DMOS.csv", "\n".join(lines) + "\n")
    rows = _by_name(PARSERS["siqad"](tmp_path))
    assert rows["cim1_1_1.bmp"].mos == 75.0 and rows["cim1_2_3.bmp"].mos == 50.0


def test_siqad_refuses_a_table_of_the_wrong_shape(tmp_path: Path) -> None:
    _siqad_images(tmp_path)
    savemat(tmp_path / "DMOS.mat", {"DMOS": np.ones((7, 20))})
    with pytest.raises(ValueError, match="49 x 20"):
        PARSERS["siqad"](tmp_path)


def test_uieb_labels_raw_images_with_the_teacher(tmp_path: Path) -> None:
    ref_a = _image(tmp_path / "reference-890" / "1_img_.png", size=(176, 168), seed=1)
    ref_b = _image(tmp_path / "reference-890" / "2_img_.png", size=(176, 168), seed=2)
    with Image.open(ref_a) as a, Image.open(ref_b) as b:
        clean, larger = np.asarray(a, dtype=np.float64), b.resize((200, 190))
    noisy = np.clip(clean + np.random.default_rng(3).normal(0, 40, clean.shape), 0, 255).astype(np.uint8)
    (tmp_path / "raw-890").mkdir()
    Image.fromarray(noisy).save(tmp_path / "raw-890" / "1_img_.png")
    larger.save(tmp_path / "raw-890" / "2_img_.png")  # another size than its reference: resized before labelling
    _image(tmp_path / "raw-890" / "3_img_.png", size=(176, 168), seed=4)  # no reference
    _image(tmp_path / "challenging-60" / "c1.png", size=(176, 168))
    assert detect(tmp_path) == "uieb"
    labels = read_labels(tmp_path)
    rows = {(r.path.parent.name, r.path.name): r for r in labels.rows}
    noisy_row, resized_row = rows[("raw-890", "1_img_.png")], rows[("raw-890", "2_img_.png")]
    assert noisy_row.ref == ref_a.resolve() and resized_row.ref == ref_b.resolve()
    assert 0.0 <= noisy_row.mos < resized_row.mos <= 100.0
    assert rows[("reference-890", "1_img_.png")].mos == 100.0 and rows[("reference-890", "1_img_.png")].ref is None
    assert len(labels.rows) == 4 and labels.scale == (0.0, 100.0)
    assert _wheres(labels) == ["raw-890/3_img_.png", "challenging-60/"]
    assert "skipped" in labels.problems[1].message
    assert "not human opinion" in labels.source


# ---------------------------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_parser_refuses_a_folder_without_its_label_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not found"):
        PARSERS[name](tmp_path)


@pytest.mark.parametrize("name, label_file, content, match", [
    ("youtube-ugc", "original_videos_MOS_for_YouTube_UGC_dataset.xlsx", b"not a zip", "not a readable .xlsx"),
    ("live-vqc", "data.mat", b"not a mat file at all", "not a readable .mat"),
    ("kadid10k", "dmos.csv", b"dist_img,ref_img,dmos\n\xff\xfe,\x80\n", "cannot be read as a UTF-8 CSV"),
    ("koniq10k", "koniq10k_scores_and_distributions.csv", b"image_name,score\n1.jpg,3\n", "no column mos"),
])
def test_unreadable_label_files_are_refused(tmp_path: Path, name: str, label_file: str, content: bytes,
                                            match: str) -> None:
    (tmp_path / label_file).write_bytes(content)
    with pytest.raises(ValueError, match=match):
        PARSERS[name](tmp_path)


def test_read_labels_names_the_known_layouts_for_anything_else(tmp_path: Path) -> None:
    _image(tmp_path / "photo.png")
    with pytest.raises(ValueError, match="no known data set layout") as info:
        read_labels(tmp_path)
    assert all(name in str(info.value) for name in PARSERS)
    assert "koniq10k_scores_and_distributions.csv" in str(info.value)
    with pytest.raises(ValueError, match="is not a .csv file"):
        read_labels(tmp_path / "photo.png")
    with pytest.raises(ValueError, match="does not exist"):
        read_labels(tmp_path / "nowhere")
    assert detect(tmp_path) is None and detect(tmp_path / "photo.png") is None


def test_read_labels_takes_a_csv_file(tmp_path: Path) -> None:
    a = _image(tmp_path / "a.png")
    labels = read_labels(_write(tmp_path / "mine.csv", "path,mos\na.png,61\n"))
    assert labels.rows == [LabelRow(a.resolve(), 61.0)] and labels.scale == (61.0, 61.0)

"""The committed catalogue of pristine media and the candidate listing behind it."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data.catalogue import candidates, contact_sheets, load_catalogue, missing_files


def test_catalogue_is_valid_and_large_enough() -> None:
    entries = load_catalogue()
    tags = Counter(e.tag for e in entries)
    assert tags["photo"] >= 60 and tags["art"] >= 10 and tags["screen"] >= 40
    assert sum(e.tag == "video" and e.note != "cgi" for e in entries) >= 8  # real (camera) clips
    assert all(e.path.startswith(("debian/", "pypi/", "screens/")) for e in entries)
    assert all(e.bytes > 0 for e in entries if not e.path.startswith("screens/"))


def test_catalogue_rejects_unknown_tags(tmp_path: Path) -> None:
    bad = tmp_path / "c.csv"
    bad.write_text("path,tag,note,width,height,bytes,source,licence\na.png,selfie,,10,10,5,x,CC0\n")
    with pytest.raises(ValueError, match="selfie"):
        load_catalogue(bad)


def test_candidates_keep_the_largest_variant_and_drop_small_images(tmp_path: Path) -> None:
    def img(rel: str, w: int, h: int) -> None:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(p)

    img("debian/pkg/usr/share/wallpapers/Hill/contents/images/1280x800.png", 1280, 800)
    img("debian/pkg/usr/share/wallpapers/Hill/contents/images/3840x2160.png", 3840, 2160)
    img("debian/pkg/usr/share/backgrounds/sea-l.png", 400, 300)
    img("debian/pkg/usr/share/backgrounds/sea-d.png", 400, 300)
    img("debian/pkg/usr/share/backgrounds/Tree_3840x2160.png", 400, 300)
    img("debian/pkg/usr/share/backgrounds/Tree.png", 300, 260)
    img("debian/pkg/usr/share/backgrounds/icon.png", 64, 64)
    found = {c.path.split("/")[-1]: c for c in candidates(tmp_path)}
    assert set(found) == {"3840x2160.png", "sea-d.png", "Tree_3840x2160.png"}
    assert found["3840x2160.png"].source == "pkg"
    sheets = contact_sheets(list(found.values()), tmp_path / "sheets", tmp_path, per_sheet=2, thumb=64)
    assert len(sheets) == 2 and Image.open(sheets[0]).size == (320, 78)
    assert missing_files(load_catalogue()[:1], tmp_path) == [load_catalogue()[0].path]

"""Screen content: generated pages render in headless Chromium; missing inputs give clear errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.data import screens
from common.errors import DqaError


def test_doc_pages_need_fetched_docs(tmp_path: Path) -> None:
    with pytest.raises(DqaError, match="dqa data fetch --only opencv-doc"):
        screens.doc_pages(tmp_path)


def test_generated_pages_are_deterministic(tmp_path: Path) -> None:
    a = screens.generated_pages(tmp_path, tmp_path / "a")
    b = screens.generated_pages(tmp_path, tmp_path / "b")
    assert [p.kind for p in a] == ["table"] * 3 + ["chart"] * 3 + ["slide"] * 3
    for pa, pb in zip(a, b):
        assert Path(pa.url[7:]).read_text() == Path(pb.url[7:]).read_text()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_capture_renders_a_real_page(tmp_path: Path) -> None:
    page = screens.generated_pages(tmp_path, tmp_path / "html")[0]
    out = tmp_path / "shot.png"
    screens.capture(page.url, out, (640, 400), screens.chromium())
    img = np.asarray(Image.open(out).convert("L"))
    assert img.shape == (400, 640) and img.std() > 10, "the table page must not be blank"

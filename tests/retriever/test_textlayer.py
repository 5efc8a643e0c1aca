"""Text-layer regions from real PDFs through the real pdftotext (no mocks)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from retriever.errors import BadInputError, MissingDependencyError, UsageError
from retriever.regions import (
    flatten_lines,
    parse_bbox_layout,
    regions_from_words,
    text_layer_regions,
    union_box,
)

# A4 in millimetres, fpdf2's default page
PAGE_W, PAGE_H = 210.0, 297.0
TOP_LINES = ["Quarterly revenue grew strongly", "thanks to the new retrieval product"]
BOTTOM_LINES = ["Bananas are rich in potassium", "and easy to carry on long hikes"]


@pytest.fixture(scope="module")
def made_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fpdf = pytest.importorskip("fpdf")
    pdf = fpdf.FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_font("helvetica", size=14)
    pdf.add_page()
    for x, y, lines in ((20, 30, TOP_LINES), (30, 200, BOTTOM_LINES)):
        for i, text in enumerate(lines):
            pdf.set_xy(x, y + 6 * i)  # ~1.2x the 14 pt font: one block
            pdf.cell(text=text)
    pdf.add_page()
    pdf.set_xy(120, 250)
    pdf.cell(text="Second page footnote")
    pdf.add_page()  # blank third page
    path = tmp_path_factory.mktemp("pdf") / "made.pdf"
    pdf.output(str(path))
    return path


def _box_mm(x: float, y: float, w: float, h: float) -> tuple[float, ...]:
    return (x / PAGE_W, y / PAGE_H, (x + w) / PAGE_W, (y + h) / PAGE_H)


def test_pages_paragraphs_and_lines(made_pdf: Path):
    pages = text_layer_regions(made_pdf)
    assert sorted(pages) == [1, 2, 3]
    assert pages[3] == []  # the blank page is present, with no regions

    top, bottom = pages[1]  # two paragraphs, in reading order
    assert top.text == " ".join(TOP_LINES)
    assert bottom.text == " ".join(BOTTOM_LINES)
    assert [ln.text for ln in top.lines] == TOP_LINES
    assert [ln.text for ln in bottom.lines] == BOTTOM_LINES
    for par in (top, bottom):
        assert par.level == "paragraph" and par.source == "text_layer"
        assert par.confidence is None
        assert all(ln.level == "line" for ln in par.children)
        words = [w for ln in par.children for w in ln.children]
        assert all(w.level == "word" for w in words)
        assert " ".join(w.text for w in words) == par.text
        for ln in par.children:  # every line lies inside its paragraph
            assert par.bbox[0] <= ln.bbox[0] and ln.bbox[2] <= par.bbox[2]
            assert par.bbox[1] <= ln.bbox[1] and ln.bbox[3] <= par.bbox[3]

    # normalized, origin top-left: the top paragraph lies in the top half, left edge at 20 mm
    assert top.bbox[3] < 0.5 < bottom.bbox[1]
    assert top.bbox[0] == pytest.approx(20 / PAGE_W, abs=0.01)
    assert top.bbox[1] == pytest.approx(30 / PAGE_H, abs=0.02)
    assert bottom.bbox[0] == pytest.approx(30 / PAGE_W, abs=0.01)
    assert bottom.bbox[1] == pytest.approx(200 / PAGE_H, abs=0.02)
    assert all(0.0 <= v <= 1.0 for v in top.bbox + bottom.bbox)

    (foot,) = pages[2]
    assert foot.text == "Second page footnote"
    assert foot.bbox[0] == pytest.approx(120 / PAGE_W, abs=0.01)
    assert foot.bbox[1] > 0.8


def test_page_range(made_pdf: Path):
    assert sorted(text_layer_regions(made_pdf, first_page=2)) == [2, 3]
    only_two = text_layer_regions(made_pdf, first_page=2, last_page=2)
    assert list(only_two) == [2] and only_two[2][0].text == "Second page footnote"
    assert text_layer_regions(made_pdf, first_page=9) == {}  # past the end: no pages
    with pytest.raises(UsageError):
        text_layer_regions(made_pdf, first_page=3, last_page=2)
    with pytest.raises(UsageError):
        text_layer_regions(made_pdf, first_page=0)


def test_real_pdf(real_pdf: Path):
    pages = text_layer_regions(real_pdf)
    assert len(pages) > 10
    found = [
        (number, par)
        for number, pars in pages.items()
        for par in pars
        if "Abstract Syntax Notation One" in par.text
    ]
    assert found, "known phrase not found in the text layer"
    number, par = found[0]
    assert number == 1
    x0, y0, x1, y1 = par.bbox
    assert 0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0
    assert y1 - y0 < 0.2  # a paragraph, not the whole page
    assert y1 < 0.5  # the subtitle sits in the top half of the title page


def test_bad_inputs(tmp_path: Path):
    with pytest.raises(BadInputError) as info:
        text_layer_regions(tmp_path / "missing.pdf")
    assert info.value.reason == "not-found"

    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(BadInputError) as info:
        text_layer_regions(empty)
    assert info.value.reason == "empty"

    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    with pytest.raises(BadInputError) as info:
        text_layer_regions(corrupt)
    assert info.value.reason == "corrupt" and info.value.path == str(corrupt)


def test_encrypted_pdf(tmp_path: Path):
    fpdf = pytest.importorskip("fpdf")
    from fpdf.enums import EncryptionMethod

    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(text="secret")
    pdf.set_encryption(owner_password="owner", user_password="user",
                       encryption_method=EncryptionMethod.RC4)
    path = tmp_path / "locked.pdf"
    pdf.output(str(path))
    with pytest.raises(BadInputError) as info:
        text_layer_regions(path)
    assert info.value.reason == "encrypted"


def test_missing_pdftotext(made_pdf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError) as info:
        text_layer_regions(made_pdf)
    assert info.value.hint == "apt-get install poppler-utils"


def test_parse_tolerates_control_characters_and_off_page_boxes():
    xhtml = (
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><doc>'
        b'<page width="100" height="200"><flow><block><line>'
        b'<word xMin="-5" yMin="10" xMax="20" yMax="20">odd\x01word</word>'
        b'<word xMin="90" yMin="10" xMax="130" yMax="20">edge</word>'
        b"</line></block></flow></page>"
        b'<page width="100" height="200"></page>'
        b"</doc></body></html>"
    )
    pages = parse_bbox_layout(io.BytesIO(xhtml), first_page=4)
    assert sorted(pages) == [4, 5] and pages[5] == []
    (par,) = pages[4]
    assert par.text == "oddword edge"
    assert par.bbox == pytest.approx((0.0, 0.05, 1.0, 0.1))


def test_layout_helpers():
    words = [
        ((0.1, 0.1, 0.2, 0.15), "hello", 0.9, 1, 1, 1),
        ((0.25, 0.1, 0.4, 0.15), "world", 0.7, 1, 1, 1),
        ((0.1, 0.2, 0.3, 0.25), "again", None, 1, 1, 2),
        ((0.1, 0.2, 0.3, 0.25), "  ", 0.1, 1, 1, 3),  # blank: dropped with its line
        ((0.5, 0.6, 0.7, 0.65), "other", 0.5, 2, 1, 1),
    ]
    pars = regions_from_words(words)
    assert [p.text for p in pars] == ["hello world again", "other"]
    assert pars[0].bbox == pytest.approx((0.1, 0.1, 0.4, 0.25))
    assert pars[0].confidence == pytest.approx(0.8)  # mean over the words that have one
    assert [ln.text for ln in flatten_lines(pars)] == ["hello world", "again", "other"]
    assert union_box([(0.1, 0.2, 0.3, 0.4), (0.0, 0.5, 0.2, 0.6)]) == (0.0, 0.2, 0.3, 0.6)
    with pytest.raises(ValueError):
        union_box([])


def test_a_killed_extraction_leaves_no_temporary_files(tmp_path):
    """SIGKILL in the middle of extracting: nothing is left in the temporary directory
    (the layout comes back on pdftotext's stdout, not through a file)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from repo_paths import REPO, SAMPLES

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    loop = ("from retriever.regions import text_layer_regions\n"
            "print('ready', flush=True)\n"
            f"while True: text_layer_regions({str(SAMPLES / 'annual-report.pdf')!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", loop], cwd=REPO, stdout=subprocess.PIPE,
                            env={**os.environ, "TMPDIR": str(scratch)})
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(1.0)  # many extractions, so the kill lands in the middle of one
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert list(scratch.iterdir()) == []

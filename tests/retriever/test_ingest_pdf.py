"""PDFs through real poppler: page count, sizes, DPI policy, lazy rendering, bad input.

PDFs are generated at test time with fpdf2, or written by hand where a broken structure
is the point (zero pages, a missing page object, rotation and crop boxes).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fpdf import FPDF

import retriever.ingest.pdf as pdf_module
from retriever.errors import BadInputError, MissingDependencyError
from retriever.ingest import MIN_DPI, open_document
from retriever.ingest.pdf import PdfPageSize, fit_dpi, render_size


def _fpdf(path: Path, sizes: list[tuple[float, float]], **encryption: str) -> Path:
    pdf = FPDF(unit="pt")
    if encryption:
        pdf.set_encryption(**encryption)
    pdf.set_font("helvetica", size=10)
    for number, size in enumerate(sizes, start=1):
        pdf.add_page(format=size)
        pdf.cell(text=f"page {number}")
    pdf.output(str(path))
    return path


def _raw_pdf(path: Path, page_dicts: list[bytes], kids: bytes | None = None) -> Path:
    """A minimal hand-written PDF: catalog, page tree, the given page dictionaries."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    refs = []
    for extra in page_dicts:
        refs.append(b"%d 0 R" % (len(objects) + 1))
        objects.append(b"<< /Type /Page /Parent 2 0 R " + extra + b" >>")
    kids = kids if kids is not None else b" ".join(refs)
    count = kids.count(b" R")
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count)
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    path.write_bytes(out)
    return path


@pytest.fixture
def three_pages(tmp_path: Path) -> Path:
    # letter, a small landscape page, a small portrait page
    return _fpdf(tmp_path / "three.pdf", [(612, 792), (300, 200), (144, 216)])


def _error(path: Path, **kwargs) -> BadInputError:
    with pytest.raises(BadInputError) as info:
        list(open_document(path, **kwargs).pages())
    err = info.value
    assert err.path == str(path) and str(path) in str(err) and err.reason in str(err)
    return err


# --- good PDFs ---------------------------------------------------------------------------


def test_page_count_sizes_and_page_fields(three_pages: Path) -> None:
    doc = open_document(three_pages, dpi=72)
    assert doc.kind == "pdf" and doc.page_count == 3 and len(doc.doc_id) == 20
    pages = list(doc.pages())
    assert [(p.width, p.height) for p in pages] == [(612, 792), (300, 200), (144, 216)]
    for number, page in enumerate(pages, start=1):
        assert page.page_number == number and page.dpi == 72
        assert page.image is not None and page.image.mode == "RGB"
        assert page.image.size == (page.width, page.height)
        assert page.doc_id == doc.doc_id and page.source == str(three_pages)
        assert page.regions == [] and page.has_text_layer is False


def test_sizes_scale_with_dpi(three_pages: Path) -> None:
    doc = open_document(three_pages, dpi=150)
    assert doc.page_sizes == ((1275, 1650), (625, 417), (300, 450))
    # Render only the small pages; the sizes promised up front are what poppler draws.
    pages = doc.pages()
    next(pages)
    assert [(p.width, p.height, p.dpi) for p in pages] == [(625, 417, 150), (300, 450, 150)]


def test_render_false_has_sizes_but_no_pixels(three_pages: Path) -> None:
    pages = list(open_document(three_pages, dpi=100, render=False).pages())
    assert [(p.width, p.height, p.dpi, p.image) for p in pages] == [
        (850, 1100, 100, None), (417, 278, 100, None), (200, 300, 100, None)]


def test_pages_render_one_at_a_time(three_pages: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    real = pdf_module.convert_from_path

    def spy(*args, **kwargs):  # real poppler underneath; we only record what was asked
        calls.append((kwargs["first_page"], kwargs["last_page"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf_module, "convert_from_path", spy)
    doc = open_document(three_pages, dpi=36)
    assert calls == []  # opening renders nothing
    pages = doc.pages()
    next(pages)
    assert calls == [(1, 1)]  # lazy: the next page is not drawn until asked for
    list(pages)
    assert calls == [(1, 1), (2, 2), (3, 3)]


def test_rotation_and_crop_box_are_honoured(tmp_path: Path) -> None:
    path = _raw_pdf(tmp_path / "rotcrop.pdf", [
        b"/MediaBox [0 0 400 300] /Rotate 90",
        b"/MediaBox [0 0 400 300] /CropBox [0 0 200 100]",
    ])
    doc = open_document(path, dpi=72)
    assert doc.page_sizes == ((300, 400), (200, 100))
    assert [p.image.size for p in doc.pages()] == [(300, 400), (200, 100)]


def test_owner_password_only_pdf_opens(tmp_path: Path) -> None:
    path = _fpdf(tmp_path / "owner.pdf", [(200, 100)], owner_password="owner")
    assert [p.page_number for p in open_document(path, dpi=36).pages()] == [1]


def test_real_pdf(real_pdf: Path) -> None:
    doc = open_document(real_pdf, dpi=50)
    assert doc.page_count == 36 and doc.page_sizes[0] == (425, 550)
    page = next(doc.pages())
    assert page.image is not None and page.image.size == (425, 550)


# --- DPI and pixel cap -------------------------------------------------------------------


def test_dpi_is_lowered_to_fit_the_cap_and_recorded(three_pages: Path) -> None:
    doc = open_document(three_pages, dpi=150, max_pixels=1_000_000, render=False)
    letter_dpi = doc.page_dpis[0]
    assert MIN_DPI <= letter_dpi < 150 and doc.page_dpis[1:] == (150, 150)
    width, height = doc.page_sizes[0]
    assert width * height <= 1_000_000
    assert render_size(PdfPageSize(612, 792), letter_dpi + 1)[0] * render_size(
        PdfPageSize(612, 792), letter_dpi + 1)[1] > 1_000_000  # the highest DPI that fits
    page = next(open_document(three_pages, dpi=150, max_pixels=1_000_000).pages())
    assert page.dpi == letter_dpi and page.image.size == (width, height)


def test_fit_dpi_policy() -> None:
    letter = PdfPageSize(612, 792)
    assert fit_dpi(letter, 150, 64_000_000) == 150
    assert fit_dpi(letter, 150, 306 * 396) == 36  # exactly fits at the floor
    assert fit_dpi(letter, 150, 306 * 396 - 1) is None
    assert fit_dpi(letter, 20, 100) is None  # a caller's own lower DPI is the floor
    assert render_size(letter, 150) == (1275, 1650)


def test_pdf_over_the_cap_even_at_min_dpi_is_too_large(three_pages: Path) -> None:
    err = _error(three_pages, max_pixels=10_000)
    assert err.reason == "too-large" and "page 1" in err.detail and "36 dpi" in err.detail


# --- bad PDFs ----------------------------------------------------------------------------


def test_random_bytes_named_pdf_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "noise.pdf"
    path.write_bytes(os.urandom(4096).replace(b"%PDF", b"xxxx"))
    err = _error(path)
    assert err.reason == "corrupt" and "not a PDF" in err.detail


def test_truncated_pdf_is_corrupt(three_pages: Path, tmp_path: Path) -> None:
    path = tmp_path / "truncated.pdf"
    data = three_pages.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    err = _error(path)
    assert err.reason == "corrupt" and "xref" in err.detail.lower()


def test_password_protected_pdf_is_encrypted(tmp_path: Path) -> None:
    path = _fpdf(tmp_path / "secret.pdf", [(200, 100)], owner_password="o", user_password="u")
    err = _error(path)
    assert err.reason == "encrypted" and err.hint


def test_pdf_with_zero_pages_is_empty(tmp_path: Path) -> None:
    # poppler: "Syntax Error: Invalid page count 0" (+ "Wrong page range given")
    path = _raw_pdf(tmp_path / "nopages.pdf", [])
    assert _error(path).reason == "empty"


def test_zero_byte_pdf_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "zero.pdf"
    path.write_bytes(b"")
    assert _error(path).reason == "empty"


def test_missing_page_object_is_corrupt_naming_the_page(tmp_path: Path) -> None:
    path = _raw_pdf(tmp_path / "badkid.pdf", [b"/MediaBox [0 0 200 100]"], kids=b"3 0 R 99 0 R")
    err = _error(path)
    assert err.reason == "corrupt" and "page 2" in err.detail


def test_failure_while_rendering_a_later_page_names_file_and_page(tmp_path: Path) -> None:
    path = tmp_path / "changing.pdf"
    _fpdf(path, [(200, 100), (200, 100)])
    doc = open_document(path, dpi=36)
    pages = doc.pages()
    assert next(pages).page_number == 1
    path.write_bytes(b"replaced by garbage while indexing")
    with pytest.raises(BadInputError) as info:
        next(pages)
    assert info.value.path == str(path) and info.value.reason == "corrupt"
    assert "page 2" in info.value.detail and str(path) in str(info.value)


def test_missing_poppler_is_a_dependency_error(
    three_pages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(MissingDependencyError) as info:
        open_document(three_pages)
    assert "apt-get install poppler-utils" in info.value.hint
    assert "brew install poppler" in info.value.hint

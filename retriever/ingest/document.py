"""``open_document``: one entry point that turns a PDF or image file into pages.

Everything that can be known about a file without rendering it is checked up front
(exists, readable, non-empty, supported type, page count, password, page sizes against the
pixel cap), so a bad file fails in ``open_document`` before any encoder work is spent on
it. Pixels are produced lazily, one page at a time, by ``Document.pages()``; a failure
there (a page poppler cannot draw, an image stream that is truncated, a file replaced
since opening) raises ``BadInputError`` naming the file and the page.

``draw_pages`` renders a chosen set of pages from their ``PagePlan`` (number, expected
size, DPI) alone, without the whole ``Document``: what a worker process needs to draw one
page range of a long document (``retriever.ingest.producer``).
"""

from __future__ import annotations

__all__ = ["DEFAULT_DPI", "Document", "PagePlan", "draw_pages", "open_document"]

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInputError, UsageError
from ..types import Page
from .filekinds import stat_regular
from .formats import DocumentKind, kind_for_path
from .hashing import content_hash
from .images import (
    DEFAULT_MAX_PIXELS,
    _check_cap,
    _decode_errors,
    _open,
    iter_image_frames,
    normalize_image,
    pixel_cap_error,
    probe_image,
)
from .pdf import MIN_DPI, fit_dpi, read_pdf_info, render_pdf_page, render_pdf_pages, render_size

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

DEFAULT_DPI = 150
# Rendered size may differ from the size predicted from pdfinfo by rounding (pdfinfo prints
# points to 2 decimals); anything beyond this means poppler drew something else entirely.
_SIZE_TOLERANCE_PX = 2
_DOC_ID = re.compile(r"[0-9a-f]{20}")


@dataclass(frozen=True)
class PagePlan:
    """One page as it will be drawn: number (1-based), expected pixel size, PDF DPI."""

    number: int
    size: tuple[int, int]
    dpi: int | None = None  # None for image files (their pixels are their own)


def _check_drawn(source: str, number: int, image: PILImage, expected: tuple[int, int]) -> None:
    drawn = zip(image.size, expected, strict=True)
    if any(abs(a - b) > _SIZE_TOLERANCE_PX for a, b in drawn):
        raise BadInputError(
            source, "corrupt",
            f"page {number}: poppler drew {image.size[0]}x{image.size[1]} px where "
            f"the page size says {expected[0]}x{expected[1]} (broken page object?)",
        )


@dataclass(frozen=True)
class Document:
    """An opened, validated input file. Cheap to hold: no pixels until ``pages()``."""

    path: Path
    doc_id: str  # first 20 hex chars of the content sha256 (``content_hash``)
    kind: DocumentKind
    page_count: int
    # Pixel (width, height) of each page as ``pages()`` will yield it: after EXIF rotation
    # for images, at ``page_dpis`` for PDFs (within a pixel or two of poppler's output).
    page_sizes: tuple[tuple[int, int], ...]
    # PDF only: the DPI each page is rendered at (lower than requested where the cap forced it).
    page_dpis: tuple[int, ...] | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    render: bool = True

    @property
    def source(self) -> str:
        """The path as a string, as stored in ``Page.source`` and in hits."""
        return str(self.path)

    def with_render(self, render: bool = True) -> Document:
        """The same document, yielding pixels or not, without validating it again.

        Lets a caller probe with ``render=False`` (sizes, page count) and then decide to
        render, with no second hash or ``pdfinfo`` run.
        """
        return replace(self, render=render)

    def pages(self) -> Iterator[Page]:
        """Yield ``Page`` objects in order, rendering one at a time (if ``render``).

        Regions are left empty and ``has_text_layer`` False: the text layer / OCR step
        fills them. Raises ``BadInputError`` naming the page when one cannot be rendered.
        """
        if self.kind == "pdf":
            yield from self._pdf_pages(range(1, self.page_count + 1))
        else:
            yield from self._image_pages()

    def page(self, number: int) -> Page:
        """One page (1-based), rendered alone if ``render``: for crops and previews."""
        if not 1 <= number <= self.page_count:
            raise UsageError(f"{self.source} has {self.page_count} page(s); no page {number}")
        if self.kind == "pdf":
            return next(self._pdf_pages([number]))
        # Frames of a multi-page image decode in order; earlier ones are dropped as we go.
        for page in self._image_pages():
            if page.page_number == number:
                return page
        raise BadInputError(self.source, "corrupt", f"page {number} could not be decoded")

    def _page(
        self, number: int, size: tuple[int, int],
        image: PILImage | None = None, dpi: int | None = None,
    ) -> Page:
        return Page(
            doc_id=self.doc_id,
            source=self.source,
            page_number=number,
            width=size[0],
            height=size[1],
            image=image,
            dpi=dpi,
        )

    def _pdf_pages(self, numbers: Iterable[int]) -> Iterator[Page]:
        dpis = self.page_dpis or ()
        for number in numbers:
            expected, dpi = self.page_sizes[number - 1], dpis[number - 1]
            if not self.render:
                yield self._page(number, expected, dpi=dpi)
                continue
            image = render_pdf_page(self.path, number, dpi)
            _check_drawn(self.source, number, image, expected)
            yield self._page(number, image.size, image=image, dpi=dpi)

    def plans(self, numbers: Iterable[int] | None = None) -> tuple[PagePlan, ...]:
        """The ``PagePlan`` of each page in ``numbers`` (default: every page)."""
        numbers = range(1, self.page_count + 1) if numbers is None else numbers
        dpis = self.page_dpis
        return tuple(PagePlan(n, self.page_sizes[n - 1], dpis[n - 1] if dpis else None)
                     for n in numbers)

    def _image_pages(self) -> Iterator[Page]:
        if not self.render:
            for number, size in enumerate(self.page_sizes, start=1):
                yield self._page(number, size)
            return
        frames = iter_image_frames(self.path, self.page_count, self.max_pixels)
        for number, image in enumerate(frames, start=1):
            yield self._page(number, image.size, image=image)


def draw_pages(
    path: str | os.PathLike[str], kind: DocumentKind, plans: Sequence[PagePlan],
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[PagePlan, PILImage]]:
    """Render the pages ``plans`` describe (ascending numbers), yielding each with its image.

    PDF: one ``pdftoppm`` per run of consecutive pages at one DPI (a page whose DPI the
    pixel cap lowered is drawn on its own), each image checked against its expected size.
    Images: only the frames asked for are decoded (TIFF frames are reached by seeking).
    Raises ``BadInputError`` naming the file and page.
    """
    path = Path(path)
    if kind == "pdf":
        yield from _draw_pdf(path, plans)
    else:
        yield from _draw_frames(path, plans, max_pixels)


def _runs(plans: Sequence[PagePlan]) -> Iterator[list[PagePlan]]:
    """Consecutive page numbers at one DPI: what one pdftoppm call can draw."""
    run: list[PagePlan] = []
    for plan in plans:
        if run and (plan.number != run[-1].number + 1 or plan.dpi != run[-1].dpi):
            yield run
            run = []
        run.append(plan)
    if run:
        yield run


def _draw_pdf(path: Path, plans: Sequence[PagePlan]) -> Iterator[tuple[PagePlan, PILImage]]:
    for run in _runs(plans):
        dpi = run[0].dpi
        if dpi is None:
            raise UsageError(f"{path}: a PDF page plan needs its DPI")
        images = render_pdf_pages(path, run[0].number, run[-1].number, dpi)
        try:
            for plan, image in zip(run, images):
                _check_drawn(str(path), plan.number, image, plan.size)
                yield plan, image
        finally:
            images.close()  # stops poppler if our caller stopped early


def _draw_frames(
    path: Path, plans: Sequence[PagePlan], max_pixels: int
) -> Iterator[tuple[PagePlan, PILImage]]:
    with _decode_errors(path):
        image = _open(path)
    with image:
        for plan in plans:
            with _decode_errors(path, plan.number):
                if plan.number > 1 or image.tell() != 0:
                    image.seek(plan.number - 1)
                # The file may have changed since probing; never decode past the cap.
                _check_cap(path, image.size, max_pixels, plan.number)
                page = normalize_image(image)
            yield plan, page


def _check_options(dpi: int, max_pixels: int) -> None:
    # bool is an int subclass; ``dpi=True`` is a bug, not 1 dpi.
    if not isinstance(dpi, int) or isinstance(dpi, bool) or not 1 <= dpi <= 2400:
        raise UsageError(f"dpi must be an integer from 1 to 2400, got {dpi!r}",
                         hint=f"{DEFAULT_DPI} suits most documents")
    if not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels < 1:
        raise UsageError(f"max_pixels must be a positive integer, got {max_pixels!r}")


def _stat_input(path: Path) -> os.stat_result:
    # From stat alone: a FIFO or device would block or never end when hashed.
    return stat_regular(path)


def _check_readable(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise BadInputError(str(path), "unreadable", exc.strerror or str(exc),
                            hint="check the file's permissions") from exc


def open_document(
    path: str | os.PathLike[str],
    *,
    dpi: int = DEFAULT_DPI,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    render: bool = True,
    doc_id: str | None = None,
) -> Document:
    """Validate ``path`` and return a ``Document`` whose ``pages()`` yields ``Page`` objects.

    ``dpi`` is the PDF rasterization resolution; pages that would exceed ``max_pixels`` at
    that DPI are rendered at the highest lower DPI that fits (``MIN_DPI`` at least).
    Images larger than ``max_pixels`` are refused. With ``render=False`` pages carry sizes
    but no image (for planning, or re-indexing text only). ``doc_id``, when the caller
    already has it from ``content_hash(path)``, saves hashing the file a second time.

    Raises ``BadInputError`` (reason: not-found, unsupported, not-a-regular-file, empty,
    unreadable, corrupt, encrypted, too-large) or ``MissingDependencyError`` when poppler
    is absent.
    """
    _check_options(dpi, max_pixels)
    path = Path(path)
    info = _stat_input(path)
    kind = kind_for_path(path)
    if kind is None:
        raise BadInputError(str(path), "unsupported", f"file type {path.suffix or '(none)'}")
    if info.st_size == 0:
        raise BadInputError(str(path), "empty", "zero-byte file")
    if doc_id is None:
        doc_id = content_hash(path)  # reads every byte: also proves the file is readable
    elif not _DOC_ID.fullmatch(doc_id):
        raise UsageError(f"doc_id must be the 20 hex chars content_hash gives, got {doc_id!r}")
    else:
        _check_readable(path)

    if kind == "pdf":
        pdf = read_pdf_info(path)
        dpis = []
        for number, size in enumerate(pdf.pages, start=1):
            fitted = fit_dpi(size, dpi, max_pixels)
            if fitted is None:
                floor = min(MIN_DPI, dpi)
                width, height = render_size(size, floor)
                how = f" even at {floor} dpi ({size.width_pt:g}x{size.height_pt:g} pt)"
                raise pixel_cap_error(path, number, width, height, max_pixels, how)
            dpis.append(fitted)
        sizes = tuple(render_size(s, d) for s, d in zip(pdf.pages, dpis, strict=True))
        return Document(path, doc_id, kind, pdf.page_count, sizes, tuple(dpis),
                        max_pixels, render)

    image = probe_image(path, max_pixels)
    return Document(path, doc_id, kind, image.page_count, image.sizes, None,
                    max_pixels, render)

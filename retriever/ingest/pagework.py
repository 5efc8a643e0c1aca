"""What one unit of page work does, the same in the main process and in a worker.

The producer (``retriever.ingest.producer``) splits every document into page ranges and
hands them out as tasks; this module is the task itself, free of any process machinery:

* ``open_job``: validate the file (``open_document``, no pixels) and learn its pages;
* ``split_ranges``: the page ranges still to do, skipping pages already stored;
* ``produce_range``: text layer for the range (one ``pdftotext``), pixels only for the
  pages that need them (one ``pdftoppm`` per run, ``draw_pages``), OCR for pages without
  text, and ``Page`` objects in page order.

Errors cross the process boundary as ``WireError`` (plain fields), because our exceptions'
constructors take more than the one message that ``pickle`` would give them back.
"""

from __future__ import annotations

__all__ = [
    "DocumentJob",
    "ProducerSettings",
    "RangeTask",
    "WireError",
    "WorkerError",
    "from_wire",
    "open_job",
    "produce_range",
    "split_ranges",
    "to_wire",
]

import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import errors
from ..errors import BadInputError, RetrieverError
from ..protocols import OCREngine
from ..regions import text_layer_regions
from ..types import Page, Region
from .document import Document, PagePlan, draw_pages, open_document


@dataclass(frozen=True)
class DocumentJob:
    """One document to produce pages for."""

    path: Path  # the file
    doc_id: str  # its content hash (``content_hash``), already computed by the caller
    source: str  # the path recorded in its pages
    #: page numbers already stored (resume): not rendered, not OCRed, not yielded
    skip: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ProducerSettings:
    """What every task needs besides its pages; sent to each worker once."""

    dpi: int
    max_pixels: int
    needs_image: bool
    ocr: OCREngine | None


@dataclass(frozen=True)
class RangeTask:
    """Pages of one document to produce, with what opening it told us (so a worker does
    not open it again). Carries only its own pages' plans, so a task stays small however
    long the document is."""

    job: DocumentJob
    kind: str  # DocumentKind
    plans: tuple[PagePlan, ...]

    @property
    def label(self) -> str:
        first, last = self.plans[0].number, self.plans[-1].number
        return f"page {first}" if first == last else f"pages {first}-{last}"


def open_job(job: DocumentJob, settings: ProducerSettings) -> Document:
    """The validated document, without pixels (raises ``BadInputError``)."""
    return open_document(job.path, dpi=settings.dpi, max_pixels=settings.max_pixels,
                         render=False, doc_id=job.doc_id)


def split_ranges(document: Document, job: DocumentJob, pages_per_range: int) -> list[RangeTask]:
    """Ranges of at most ``pages_per_range`` consecutive pages not in ``job.skip``.

    A range never spans a skipped page: the pages on either side are separate ranges,
    so a skipped page is neither drawn nor read from the text layer.
    """
    tasks: list[RangeTask] = []
    run: list[int] = []
    for number in range(1, document.page_count + 1):
        if number in job.skip:
            if run:
                tasks.append(RangeTask(job, document.kind, document.plans(run)))
                run = []
            continue
        run.append(number)
        if len(run) == pages_per_range:
            tasks.append(RangeTask(job, document.kind, document.plans(run)))
            run = []
    if run:
        tasks.append(RangeTask(job, document.kind, document.plans(run)))
    return tasks


def produce_range(task: RangeTask, settings: ProducerSettings) -> Iterator[Page]:
    """The task's pages, in order, with regions (and pixels when ``needs_image``).

    A page's own text layer wins over OCR (exact boxes, no recognition error); pages are
    drawn only for the image encoder or for OCR of a page without text.
    """
    job, plans = task.job, task.plans
    layer: dict[int, list[Region]] = {}
    if task.kind == "pdf":
        layer = text_layer_regions(job.path, plans[0].number, plans[-1].number)
    ocr = settings.ocr
    draw = [p for p in plans
            if settings.needs_image or (ocr is not None and not layer.get(p.number))]
    drawn = draw_pages(job.path, task.kind, draw, settings.max_pixels)  # type: ignore[arg-type]
    try:
        pending = iter(draw)
        next_drawn = next(pending, None)
        for plan in plans:
            page = Page(doc_id=job.doc_id, source=job.source, page_number=plan.number,
                        width=plan.size[0], height=plan.size[1], dpi=plan.dpi)
            if next_drawn is not None and next_drawn.number == plan.number:
                _, image = next(drawn)
                page.width, page.height = image.size
                page.image = image
                del image
                next_drawn = next(pending, None)
            own_text = layer.get(plan.number) or []
            if own_text:
                page.regions, page.has_text_layer = own_text, True
            elif ocr is not None and page.image is not None:
                page.regions = ocr.recognize(page.image)
            if not settings.needs_image:
                page.image = None  # OCR is done with the pixels; never ship them
            yield page
            del page  # no reference held while the caller works on it
    finally:
        drawn.close()


# --- errors across processes ----------------------------------------------------------


class WorkerError(RetrieverError):
    """An unexpected exception in a worker process, rebuilt in the main process.

    ``message`` reads like the in-process ``f"{type}: {message}"``; ``traceback`` is the
    worker's traceback as text, for logs.
    """

    def __init__(self, message: str, type_name: str, traceback_text: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.traceback = traceback_text


@dataclass(frozen=True)
class WireError:
    """An exception as plain fields: enough to rebuild it on the other side."""

    type_name: str
    message: str
    hint: str | None = None
    path: str | None = None  # BadInputError only
    reason: str | None = None
    detail: str = ""
    traceback: str = ""


def to_wire(exc: BaseException) -> WireError:
    if isinstance(exc, BadInputError):
        return WireError("BadInputError", exc.message, exc.hint, exc.path, exc.reason,
                         exc.detail)
    if isinstance(exc, RetrieverError):
        return WireError(type(exc).__name__, exc.message, exc.hint)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return WireError(type(exc).__name__, str(exc), traceback=text)


def from_wire(wire: WireError) -> Exception:
    if wire.type_name == "BadInputError" and wire.path is not None:
        return BadInputError(wire.path, wire.reason or "corrupt", wire.detail, hint=wire.hint)
    cls = getattr(errors, wire.type_name, None)
    if isinstance(cls, type) and issubclass(cls, RetrieverError) and \
            not issubclass(cls, BadInputError):
        return cls(wire.message, wire.hint)
    return WorkerError(f"{wire.type_name}: {wire.message}", wire.type_name, wire.traceback)

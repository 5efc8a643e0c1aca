"""Pages with regions from many documents, made by worker processes, handed over in order.

``PageProducer.run(jobs)`` turns ``DocumentJob``s into events, strictly in job order and,
within a job, in page order::

    with PageProducer(workers=4, dpi=150, max_pixels=64_000_000, needs_image=False,
                      ocr=engine) as producer:
        for event in producer.run(jobs):          # jobs may be a lazy generator
            if isinstance(event, PageReady): ...  # event.page: regions, pixels if asked
            elif isinstance(event, DocumentEnd): ...   # every page of event.job was yielded
            else: ...                             # DocumentFailed: event.error

so the main process encodes and commits while the workers rasterize, read text layers
and run OCR. Documents are split into ranges of a few pages (``range_pages``), each range
one task: its text layer from one ``pdftotext``, its pixels from one ``pdftoppm``. At most
``window`` pages are in flight or waiting at any time, so memory stays flat however long a
document is; ``jobs`` is read a little ahead, so workers do not idle at document ends.

A bad file is a ``DocumentFailed`` event (``BadInputError``, reason and file named) and the
run goes on; a worker that dies (poppler segfaulting on a hostile PDF) fails the document
it was on (``WorkerCrashedError``) and is replaced. ``MissingDependencyError`` is raised,
since every later document would fail the same way. ``workers=0`` runs the same page code
in this process: for tests, debugging, and runs too small to pay for starting workers
(about a quarter of a second of imports each).
"""

from __future__ import annotations

__all__ = [
    "RANGE_PAGES",
    "DocumentEnd",
    "DocumentFailed",
    "DocumentJob",
    "Event",
    "PageProducer",
    "PageReady",
    "WorkerCrashedError",
    "WorkerError",
    "default_window",
    "default_workers",
]

import os
import pickle
from collections.abc import Iterable, Iterator
from types import TracebackType

from ..errors import MissingDependencyError, UsageError
from ..protocols import OCREngine
from .events import DocumentEnd, DocumentFailed, Event, PageReady, WorkerCrashedError
from .pagework import (
    DocumentJob,
    ProducerSettings,
    WorkerError,
    open_job,
    produce_range,
    split_ranges,
)
from .schedule import Schedule
from .workerpool import WorkerPool

#: pages per task. Each task starts pdftotext (and pdftoppm) once, and they re-read the
#: PDF's structure each time: 4-page ranges cost about 4 CPU ms a page more than one
#: whole-document call ("range" rows of benchmarks/ingest.py), nothing beside OCR or
#: encoding (about a second a page each on a CPU), while short tasks spread a scanned
#: document's OCR over the workers and keep the window (pixels, with needs_image) small.
RANGE_PAGES = 4
_END = object()


def default_workers() -> int:
    """Worker processes when the caller does not say: one per core."""
    return os.cpu_count() or 1


def default_window(workers: int, range_pages: int = RANGE_PAGES) -> int:
    """Pages in flight or waiting by default: a range in progress per worker plus two
    done and waiting, so that a worker always has its next range while the main process
    is busy encoding."""
    return range_pages * (max(workers, 1) + 2)


class PageProducer:
    """Produce ``Page`` objects with regions from documents, in order, in worker processes.

    ``workers``: processes (default ``default_workers()``, one per core; 0: in this
    process). ``dpi`` and
    ``max_pixels``: the encoder's rasterization DPI and the pixel cap (``open_document``).
    ``needs_image``: keep the pixels on the page (image encoders); otherwise pages are
    drawn only for OCR of pages without a text layer and the pixels never leave the
    worker. ``ocr``: the engine for pages without text (None: no OCR); it is pickled to
    each worker. ``window``: pages in flight or buffered at most (``default_window``).
    ``range_pages``: pages per task.
    """

    def __init__(
        self, *, workers: int | None = None, dpi: int, max_pixels: int, needs_image: bool,
        ocr: OCREngine | None, window: int | None = None, range_pages: int = RANGE_PAGES,
    ) -> None:
        workers = default_workers() if workers is None else workers
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise UsageError(f"workers must be 0 or more, got {workers!r}")
        if not isinstance(range_pages, int) or range_pages < 1:
            raise UsageError(f"range_pages must be 1 or more, got {range_pages!r}")
        window = default_window(workers, range_pages) if window is None else window
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise UsageError(f"window must be 1 page or more, got {window!r}")
        self.workers = workers
        self.window = window
        self.range_pages = min(range_pages, window)  # a task must fit the window
        self.settings = ProducerSettings(dpi, max_pixels, needs_image, ocr)
        self._pool: WorkerPool | None = None
        self._running = False
        self._restarts_before = 0  # by pools already closed
        #: most pages ever in flight or buffered at once (at most ``window``)
        self.peak_pages = 0
        if workers:
            _check_picklable(self.settings)

    # -- life cycle ------------------------------------------------------------------

    def __enter__(self) -> PageProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers now (whatever they are doing); safe to call twice."""
        pool, self._pool = self._pool, None
        if pool is not None:
            self._restarts_before += pool.restarts
            pool.close()

    @property
    def restarts(self) -> int:
        """Workers replaced after dying, in this producer's life."""
        return self._restarts_before + (self._pool.restarts if self._pool is not None else 0)

    # -- runs --------------------------------------------------------------------------

    def run(self, jobs: Iterable[DocumentJob]) -> Iterator[Event]:
        """Events for ``jobs`` in order (see the module docstring). One run at a time;
        closing the generator early stops the workers."""
        if self._running:
            raise UsageError("PageProducer.run: a run is already in progress")
        return self._inline(jobs) if self.workers == 0 else self._pooled(jobs)

    def _inline(self, jobs: Iterable[DocumentJob]) -> Iterator[Event]:
        self._running = True
        try:
            for job in jobs:
                try:
                    document = open_job(job, self.settings)
                    for task in split_ranges(document, job, self.range_pages):
                        for page in produce_range(task, self.settings):
                            self.peak_pages = max(self.peak_pages, 1)
                            yield PageReady(job, page)
                            del page  # the caller owns it now
                except MissingDependencyError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one file's failure, reported
                    yield DocumentFailed(job, exc)
                    continue
                yield DocumentEnd(job, document.page_count)
        finally:
            self._running = False

    def _pooled(self, jobs: Iterable[DocumentJob]) -> Iterator[Event]:
        self._running = True
        finished = False
        try:
            if self._pool is None:
                self._pool = WorkerPool(self.workers, self.settings)
                self._pool.start()
            pool = self._pool
            schedule = Schedule(self.window, self.range_pages)
            source = iter(jobs)
            exhausted = False
            while True:
                exhausted = _top_up(pool, schedule, source, exhausted)
                self.peak_pages = max(self.peak_pages, schedule.reserved)
                if schedule.has_event():
                    yield schedule.pop_event()  # no local keeps the page once handed over
                    continue
                if exhausted and schedule.empty():
                    finished = True
                    return
                if pool.idle():  # nothing due and nothing coming: waiting would hang
                    raise RuntimeError("page producer stalled with work left (a bug)")
                # in a call, not a loop here: a loop variable would keep the last page
                # received alive for as long as this generator waits
                schedule.handle_all(pool.receive())
        finally:
            self._running = False
            if not finished:
                # Stopped early (closed, interrupted, an error): its workers hold tasks
                # nobody wants any more; a later run starts a fresh pool.
                self.close()


def _top_up(pool: WorkerPool, schedule: Schedule, source: Iterator[object],
            exhausted: bool) -> bool:
    """Give the workers what the window allows, reading jobs as needed; True once the
    jobs are exhausted."""
    while pool.free_slots() > 0:
        task = schedule.next_task()
        if task is not None:
            pool.submit(task)
            continue
        if exhausted or not schedule.wants_job():
            break
        job = next(source, _END)
        if job is _END:
            return True
        schedule.add(job)  # type: ignore[arg-type]
    return exhausted


def _check_picklable(settings: ProducerSettings) -> None:
    try:
        pickle.dumps(settings)
    except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing
        name = getattr(settings.ocr, "name", type(settings.ocr).__name__)
        raise UsageError(
            f"the OCR engine {name!r} cannot be sent to worker processes ({exc})",
            hint="use workers=0 to run it in this process",
        ) from exc


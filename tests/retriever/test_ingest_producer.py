"""retriever.ingest.producer: ordered, bounded page production in worker processes.

Real poppler and real worker processes throughout; OCR is a fake engine (defined here, so
workers import it from this module) that logs every page it sees to a file, which is how
the tests see inside the workers: which pages were drawn, how many were made ahead of the
consumer, which process made them. One test runs real tesseract in a worker.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest
from fpdf import FPDF
from PIL import Image

import retriever.ingest.document as document_module
import retriever.ingest.pagework as pagework_module
from retriever.errors import BadInputError, MissingDependencyError
from retriever.ingest import Document, content_hash
from retriever.ingest.pagework import split_ranges, to_wire
from retriever.ingest.pdf import render_pdf_page, render_pdf_pages
from retriever.ingest.producer import (
    DocumentEnd,
    DocumentFailed,
    DocumentJob,
    PageProducer,
    PageReady,
    WorkerCrashedError,
)
from retriever.ingest.schedule import Schedule
from retriever.ingest.workerpool import WorkerPool
from retriever.types import Page, Region

from repo_paths import SAMPLES

CAP = 64_000_000


@dataclass
class LoggingOCR:
    """One region naming the image size; appends ``pid width height`` to ``log`` per page.

    ``crash_width``: die like a segfaulting tesseract on an image of that width
    (``crash`` = "segv" or "exit"); ``child_seconds``: run ``sleep`` as a child process
    first (a stand-in for a slow tesseract), logging its pid as ``child PID``.
    """

    log: str
    crash_width: int | None = None
    crash: str = "segv"
    child_seconds: float = 0.0
    name = "logging-ocr"

    def check_available(self) -> None:
        pass

    def recognize(self, image: Image.Image) -> list[Region]:
        if image.width == self.crash_width:
            if self.crash == "segv":
                os.kill(os.getpid(), signal.SIGSEGV)
            os._exit(70)
        if self.child_seconds:
            child = subprocess.Popen(["sleep", str(self.child_seconds)])
            with open(self.log, "a") as fh:
                fh.write(f"child {child.pid}\n")
            child.wait()
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()} {image.width} {image.height}\n")
        return [Region((0.1, 0.1, 0.9, 0.2), f"{image.width}x{image.height}")]


def _seen(log: Path) -> list[tuple[int, int]]:
    """(width, height) of every page the OCR engine got, in the order it got them."""
    if not log.exists():
        return []
    rows = [line.split() for line in log.read_text().splitlines()]
    return [(int(r[1]), int(r[2])) for r in rows if r[0] != "child"]


def _job(path: Path, skip: frozenset[int] = frozenset()) -> DocumentJob:
    return DocumentJob(path, content_hash(path), str(path), skip)


def _producer(workers: int, ocr: object, **kwargs: object) -> PageProducer:
    kwargs.setdefault("dpi", 72)
    kwargs.setdefault("needs_image", False)
    return PageProducer(workers=workers, max_pixels=CAP, ocr=ocr, **kwargs)  # type: ignore[arg-type]


def _summary(events: list[object]) -> list[tuple[str, str, int]]:
    out = []
    for event in events:
        name = event.job.path.name  # type: ignore[attr-defined]
        if isinstance(event, PageReady):
            out.append((name, "page", event.page.page_number))
        elif isinstance(event, DocumentEnd):
            out.append((name, "end", event.page_count))
        else:
            out.append((name, "failed", 0))
    return out


@pytest.fixture
def tiff(tmp_path: Path) -> Path:
    """Three frames of different widths, so the OCR log tells them apart."""
    path = tmp_path / "frames.tiff"
    frames = [Image.new("L", (301 + i, 200), 255) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return path


@pytest.fixture
def scanned_pdf(tmp_path: Path) -> Path:
    """Three image-only pages (no text layer) of different widths, at 72 dpi."""
    path = tmp_path / "scan.pdf"
    pages = [Image.new("RGB", (401 + i, 300), "white") for i in range(3)]
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=72.0)
    return path


def _pdf(path: Path, sizes: list[tuple[float, float]]) -> Path:
    pdf = FPDF(unit="pt")
    pdf.set_font("helvetica", size=10)
    for number, size in enumerate(sizes, start=1):
        pdf.add_page(format=size)
        pdf.cell(text=f"page {number}")
    pdf.output(str(path))
    return path


# --- order, identity, skips --------------------------------------------------------------


def test_events_come_in_job_order_and_page_order(tmp_path, tiff, scanned_pdf):
    report = SAMPLES / "annual-report.pdf"
    files = [report, SAMPLES / "scanned-letter.png", tiff, scanned_pdf, SAMPLES / "invoice.pdf"]
    ocr = LoggingOCR(str(tmp_path / "ocr.log"))
    with _producer(2, ocr, range_pages=2) as producer:  # the report is two ranges
        events = list(producer.run(_job(f) for f in files))  # a lazy generator of jobs
    assert _summary(events) == [
        ("annual-report.pdf", "page", 1), ("annual-report.pdf", "page", 2),
        ("annual-report.pdf", "page", 3), ("annual-report.pdf", "end", 3),
        ("scanned-letter.png", "page", 1), ("scanned-letter.png", "end", 1),
        ("frames.tiff", "page", 1), ("frames.tiff", "page", 2), ("frames.tiff", "page", 3),
        ("frames.tiff", "end", 3),
        ("scan.pdf", "page", 1), ("scan.pdf", "page", 2), ("scan.pdf", "page", 3),
        ("scan.pdf", "end", 3),
        ("invoice.pdf", "page", 1), ("invoice.pdf", "end", 1),
    ]
    pages = [e.page for e in events if isinstance(e, PageReady)]
    assert all(p.source == str(p.source) and p.image is None for p in pages)
    assert {p.doc_id for p in pages if p.source == str(report)} == {content_hash(report)}
    text_layer = [p.has_text_layer for p in pages]
    assert text_layer == [True] * 3 + [False] * 7 + [True]
    frames = [p for p in pages if p.source == str(tiff)]
    assert [r.text for p in frames for r in p.regions] == ["301x200", "302x200", "303x200"]
    assert "Calderwood" in pages[0].regions[0].text  # the PDF's own text, not OCR


def _fingerprint(page) -> tuple:
    pixels = hashlib.sha256(page.image.tobytes()).hexdigest() if page.image else None
    return (page.doc_id, page.source, page.page_number, page.width, page.height, page.dpi,
            page.has_text_layer, [r.to_dict() for r in page.regions], pixels)


@pytest.mark.parametrize("needs_image", [False, True])
def test_workers_and_in_process_give_identical_pages(tmp_path, tiff, scanned_pdf, needs_image):
    files = [SAMPLES / "annual-report.pdf", tiff, scanned_pdf, SAMPLES / "slide.pdf"]
    ocr = LoggingOCR(str(tmp_path / "ocr.log"))
    runs = []
    for workers in (0, 2):
        with _producer(workers, ocr, needs_image=needs_image, range_pages=2) as producer:
            runs.append([_fingerprint(e.page) if isinstance(e, PageReady) else _summary([e])
                         for e in producer.run([_job(f) for f in files])])
    assert runs[0] == runs[1] and len(runs[0]) == 14
    if needs_image:
        assert all(f[-1] is not None for f in runs[0] if isinstance(f, tuple))


def test_skipped_pages_are_never_drawn_ocred_or_yielded(tmp_path, tiff, scanned_pdf):
    log = tmp_path / "ocr.log"
    jobs = [_job(SAMPLES / "annual-report.pdf", frozenset({2})),
            _job(scanned_pdf, frozenset({2})), _job(tiff, frozenset({1, 3})),
            _job(SAMPLES / "invoice.pdf", frozenset({1}))]
    with _producer(2, LoggingOCR(str(log))) as producer:
        events = list(producer.run(jobs))
    assert _summary(events) == [
        ("annual-report.pdf", "page", 1), ("annual-report.pdf", "page", 3),
        ("annual-report.pdf", "end", 3),
        ("scan.pdf", "page", 1), ("scan.pdf", "page", 3), ("scan.pdf", "end", 3),
        ("frames.tiff", "page", 2), ("frames.tiff", "end", 3),
        ("invoice.pdf", "end", 1),
    ]
    assert sorted(_seen(log)) == [(302, 200), (401, 300), (403, 300)]


def test_skipped_pages_are_not_rasterized_nor_read_from_the_text_layer(monkeypatch):
    drawn: list[tuple[int, int, int]] = []
    read: list[tuple[int, int]] = []
    real_render, real_layer = document_module.render_pdf_pages, pagework_module.text_layer_regions

    def render(path, first, last, dpi):
        drawn.append((first, last, dpi))
        return real_render(path, first, last, dpi)

    def layer(path, first, last):
        read.append((first, last))
        return real_layer(path, first, last)

    monkeypatch.setattr(document_module, "render_pdf_pages", render)
    monkeypatch.setattr(pagework_module, "text_layer_regions", layer)
    job = _job(SAMPLES / "annual-report.pdf", frozenset({2}))
    with _producer(0, None, needs_image=True) as producer:
        pages = [e.page for e in producer.run([job]) if isinstance(e, PageReady)]
    assert [p.page_number for p in pages] == [1, 3] and all(p.image for p in pages)
    assert drawn == [(1, 1, 72), (3, 3, 72)] and read == [(1, 1), (3, 3)]


def test_a_range_is_one_poppler_call_and_a_lowered_dpi_page_is_drawn_alone(
    tmp_path, monkeypatch
):
    drawn: list[tuple[int, int, int]] = []
    real = document_module.render_pdf_pages

    def render(path, first, last, dpi):
        drawn.append((first, last, dpi))
        return real(path, first, last, dpi)

    monkeypatch.setattr(document_module, "render_pdf_pages", render)
    # page 3 is a poster: at 100 dpi it is over the cap, so it gets a lower DPI
    path = _pdf(tmp_path / "poster.pdf", [(200, 100)] * 2 + [(2000, 2000)] + [(200, 100)] * 3)
    with PageProducer(workers=0, dpi=100, max_pixels=1_000_000, needs_image=True,
                      ocr=None, range_pages=6) as producer:
        pages = [e.page for e in producer.run([_job(path)]) if isinstance(e, PageReady)]
    assert drawn == [(1, 2, 100), (3, 3, 36), (4, 6, 100)]
    assert [p.dpi for p in pages] == [100, 100, 36, 100, 100, 100]
    assert all(p.image.size == (p.width, p.height) for p in pages)


def test_render_pdf_pages_gives_the_pixels_of_render_pdf_page():
    report = SAMPLES / "annual-report.pdf"
    together = list(render_pdf_pages(report, 1, 3, 50))
    alone = [render_pdf_page(report, n, 50) for n in (1, 2, 3)]
    assert [i.tobytes() for i in together] == [i.tobytes() for i in alone]
    with pytest.raises(BadInputError) as info:
        list(render_pdf_pages(report, 2, 5, 50))  # the file has 3 pages
    assert info.value.path == str(report) and "pages 2-5" in info.value.detail


# --- the schedule alone: order, bound and progress under any message order ----------------


def _simulate(seed: int) -> None:
    """Workers that finish in random order, a consumer that takes events at random
    moments, documents of random lengths with random skips and failures: the events must
    come in order, ``reserved`` stay within the window, and the run always progress."""
    rng = random.Random(seed)
    window = rng.randint(1, 10)
    range_pages = min(rng.randint(1, 4), window)
    schedule = Schedule(window, range_pages)
    docs = {}
    for i in range(rng.randint(1, 10)):
        n = rng.randint(1, 9)
        job = DocumentJob(Path(f"/d{i}.pdf"), f"{i:020x}", f"/d{i}.pdf",
                          frozenset(p for p in range(1, n + 1) if rng.random() < 0.25))
        docs[job] = (Document(job.path, job.doc_id, "pdf", n, ((9, 9),) * n, (72,) * n),
                     rng.random() < 0.2)
    wire = to_wire(BadInputError("/x.pdf", "corrupt"))

    def messages(task):  # what a worker sends for a task
        plans = task[2].plans if task[0] == "range" else None
        job = task[2].job if plans else task[2]
        document, fails = docs[job]
        if plans is None:
            yield ("opened", task[1], document)
            ranges = split_ranges(document, job, task[3])
            plans = ranges[0].plans if ranges else ()
        for plan in plans:
            yield ("page", task[1], Page(job.doc_id, job.source, plan.number, 9, 9))
        yield ("error", task[1], wire) if fails and rng.random() < 0.5 else ("done", task[1])

    workers: list[deque] = [deque() for _ in range(rng.randint(1, 3))]
    jobs, exhausted, events = iter(list(docs)), False, []
    for _ in range(100_000):
        while sum(2 - len(w) for w in workers) > 0:
            task = schedule.next_task()
            if task is not None:
                min(workers, key=len).append(messages(task))
            elif exhausted or not schedule.wants_job():
                break
            elif (job := next(jobs, None)) is None:
                exhausted = True
            else:
                schedule.add(job)
        assert schedule.reserved <= window
        busy = [w for w in workers if w]
        if schedule.has_event() and (not busy or rng.random() < 0.5):
            events.append(schedule.pop_event())
            continue
        if not busy:
            assert exhausted and schedule.empty(), f"stuck (seed {seed})"
            break
        worker = rng.choice(busy)
        message = next(worker[0])
        if message[0] in ("done", "error"):
            worker.popleft()
        schedule.handle(message)
    assert schedule.reserved == 0
    expected_order = [job for job in docs]
    assert [e.job for e in events if not isinstance(e, PageReady)] == expected_order
    for job, (document, _) in docs.items():
        numbers = [e.page.page_number for e in events if isinstance(e, PageReady) and e.job == job]
        wanted = [n for n in range(1, document.page_count + 1) if n not in job.skip]
        assert numbers == wanted[:len(numbers)]
        (last,) = [e for e in events if e.job == job and not isinstance(e, PageReady)]
        assert isinstance(last, DocumentFailed) or numbers == wanted


def test_the_schedule_keeps_order_and_bound_and_never_stalls():
    for seed in range(300):
        _simulate(seed)


# --- bad input, crashes, missing tools -----------------------------------------------------


def test_a_bad_file_fails_alone_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(os.urandom(2000))
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    files = [SAMPLES / "invoice.pdf", garbage, SAMPLES / "scanned-letter.png", empty,
             SAMPLES / "slide.pdf"]
    jobs = [_job(f) if f != empty else DocumentJob(f, "0" * 20, str(f)) for f in files]
    with _producer(2, LoggingOCR(str(tmp_path / "ocr.log"))) as producer:
        events = list(producer.run(jobs))
    assert _summary(events) == [
        ("invoice.pdf", "page", 1), ("invoice.pdf", "end", 1),
        ("garbage.pdf", "failed", 0),
        ("scanned-letter.png", "page", 1), ("scanned-letter.png", "end", 1),
        ("empty.png", "failed", 0),
        ("slide.pdf", "page", 1), ("slide.pdf", "end", 1),
    ]
    failures = [e.error for e in events if isinstance(e, DocumentFailed)]
    assert all(isinstance(err, BadInputError) for err in failures)
    assert [(err.path, err.reason) for err in failures] == [  # type: ignore[attr-defined]
        (str(garbage), "corrupt"), (str(empty), "empty")]
    assert str(garbage) in str(failures[0])


@pytest.mark.parametrize("crash, how", [("segv", "SIGSEGV"), ("exit", "exit code 70")])
def test_a_worker_that_dies_fails_its_document_and_the_run_goes_on(tmp_path, crash, how):
    doomed = tmp_path / "doomed.png"
    Image.new("RGB", (777, 100), "white").save(doomed)
    files = [SAMPLES / "scanned-letter.png", doomed, SAMPLES / "annual-report.pdf",
             SAMPLES / "scanned-letter.png"]
    ocr = LoggingOCR(str(tmp_path / "ocr.log"), crash_width=777, crash=crash)
    with _producer(2, ocr) as producer:
        events = list(producer.run([_job(f) for f in files]))
        assert producer.restarts == 1
    assert _summary(events) == [
        ("scanned-letter.png", "page", 1), ("scanned-letter.png", "end", 1),
        ("doomed.png", "failed", 0),
        ("annual-report.pdf", "page", 1), ("annual-report.pdf", "page", 2),
        ("annual-report.pdf", "page", 3), ("annual-report.pdf", "end", 3),
        ("scanned-letter.png", "page", 1), ("scanned-letter.png", "end", 1),
    ]
    (error,) = [e.error for e in events if isinstance(e, DocumentFailed)]
    assert isinstance(error, WorkerCrashedError) and isinstance(error, BadInputError)
    assert error.path == str(doomed) and how in error.detail and "page 1" in error.detail


@pytest.mark.parametrize("workers", [0, 2])
def test_missing_poppler_raises_instead_of_failing_each_file(tmp_path, monkeypatch, workers):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    jobs = [_job(SAMPLES / "invoice.pdf"), _job(SAMPLES / "slide.pdf")]
    with _producer(workers, None) as producer, pytest.raises(MissingDependencyError) as info:
        list(producer.run(jobs))
    assert "poppler" in str(info.value)


# --- memory: the window, and pixels handed over ---------------------------------------------


def test_pages_in_flight_never_exceed_the_window(tmp_path, scanned_pdf):
    log = tmp_path / "ocr.log"
    images = []
    for i in range(10):
        images.append(tmp_path / f"img{i}.png")
        Image.new("L", (100 + i, 50), 255).save(images[-1])
    jobs = [_job(p) for p in images[:5]] + [_job(scanned_pdf)] + [_job(p) for p in images[5:]]
    consumed, ahead = 0, []
    with _producer(2, LoggingOCR(str(log)), window=3, range_pages=1) as producer:
        for event in producer.run(jobs):
            if isinstance(event, PageReady):
                ahead.append(len(_seen(log)) - consumed)  # made, not yet handed over
                consumed += 1
                time.sleep(0.03)  # a slow encoder: the workers run ahead, up to the window
        assert producer.peak_pages <= 3
    assert consumed == 13 and max(ahead) <= 3
    assert max(ahead) >= 2  # they did run ahead


@pytest.mark.parametrize("workers", [0, 2])
def test_no_reference_to_a_handed_over_page_is_kept(monkeypatch, workers):
    """While the producer works on the next page, the last one handed over is gone once
    the caller has dropped it (the producer keeps no reference of its own)."""
    previous: list[weakref.ref] = []
    alive: list[bool] = []

    def checked(real):
        def wrapper(*args, **kwargs):
            if previous:
                alive.append(previous.pop()() is not None)
            return real(*args, **kwargs)
        return wrapper

    # where each mode waits for its next page: poppler in-process, the workers' pipes
    if workers:
        monkeypatch.setattr(WorkerPool, "receive", checked(WorkerPool.receive))
    else:
        monkeypatch.setattr(document_module, "render_pdf_pages",
                            checked(document_module.render_pdf_pages))
    jobs = [_job(SAMPLES / "annual-report.pdf"), _job(SAMPLES / "slide.pdf")]
    with _producer(workers, None, needs_image=True, window=2, range_pages=1) as producer:
        for event in producer.run(jobs):
            previous.clear()
            if isinstance(event, PageReady):
                previous.append(weakref.ref(event.page.image))
            del event
    assert alive and not any(alive)


# --- stopping -------------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_closing_the_run_early_stops_the_workers_and_their_tools(tmp_path):
    log = tmp_path / "ocr.log"
    scans = []
    for i in range(4):
        scans.append(tmp_path / f"scan{i}.png")
        Image.new("L", (120 + i, 60), 255).save(scans[-1])
    jobs = [_job(SAMPLES / "invoice.pdf")] + [_job(p) for p in scans]
    producer = _producer(2, LoggingOCR(str(log), child_seconds=60))
    events = producer.run(jobs)
    assert isinstance(next(events), PageReady)  # the invoice: text layer, no OCR
    deadline = time.monotonic() + 10
    while log.read_text().count("child") < 2 if log.exists() else True:
        assert time.monotonic() < deadline, "the workers never started OCR"
        time.sleep(0.05)
    workers = [w.process.pid for w in producer._pool._workers]  # type: ignore[union-attr]
    children = [int(line.split()[1]) for line in log.read_text().splitlines()]
    started = time.monotonic()
    events.close()
    assert time.monotonic() - started < 5  # 60 s of "tesseract" are not waited for
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in workers + children):
        assert time.monotonic() < deadline, "a worker or its child outlived close()"
        time.sleep(0.05)
    producer.close()  # idempotent


_SLOW_OCR = """
import os, subprocess

class SlowOCR:
    name = "slow"

    def __init__(self, log):
        self.log = log

    def check_available(self):
        pass

    def recognize(self, image):
        child = subprocess.Popen(["sleep", "60"])
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()} {child.pid}\\n")
        child.wait()
        return []
"""

_RUN = """
import sys
from pathlib import Path
from PIL import Image
from slowocr import SlowOCR
from retriever.ingest import content_hash
from retriever.ingest.producer import DocumentJob, PageProducer

folder = Path(sys.argv[1])
jobs = []
for i in range(4):
    path = folder / f"scan{i}.png"
    Image.new("L", (100 + i, 50), 255).save(path)
    jobs.append(DocumentJob(path, content_hash(path), str(path)))
with PageProducer(workers=2, dpi=72, max_pixels=10**8, needs_image=False,
                  ocr=SlowOCR(str(folder / "ocr.log"))) as producer:
    for event in producer.run(jobs):
        pass
"""


def test_ctrl_c_ends_the_run_and_its_workers_promptly(tmp_path):
    (tmp_path / "slowocr.py").write_text(_SLOW_OCR)
    (tmp_path / "run.py").write_text(_RUN)
    log = tmp_path / "ocr.log"
    main = subprocess.Popen([sys.executable, str(tmp_path / "run.py"), str(tmp_path)],
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not log.exists() or len(log.read_text().splitlines()) < 2:
            assert time.monotonic() < deadline and main.poll() is None, "OCR never started"
            time.sleep(0.05)
        pids = [int(p) for line in log.read_text().splitlines() for p in line.split()]
        main.send_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends the main process
        _, stderr = main.communicate(timeout=10)
    finally:
        main.kill()
    assert b"KeyboardInterrupt" in stderr
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, "a worker or its tesseract outlived Ctrl-C"
        time.sleep(0.05)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract not installed")
def test_real_tesseract_runs_in_a_worker_as_in_process():
    from plugins.tesseract import TesseractEngine

    jobs = [_job(SAMPLES / "scanned-receipt.pdf")]
    runs = []
    for workers in (0, 1):
        with _producer(workers, TesseractEngine(), dpi=150) as producer:
            runs.append([_fingerprint(e.page) for e in producer.run(jobs)
                         if isinstance(e, PageReady)])
    assert runs[0] == runs[1]
    assert "OAKRIDGE" in " ".join(r["text"] for r in runs[0][0][7])

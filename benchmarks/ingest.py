"""Ingestion: where a page's time goes, what overlapping it can win, and peak memory.

    python benchmarks/ingest.py                  # everything; about 10 minutes on 2 cores
    python benchmarks/ingest.py --quick          # fewer pages, no memory rows
    python benchmarks/ingest.py --json           # one JSON object per row
    python benchmarks/ingest.py --workers 4 --threads 4

Setup: the default extras (text/minilm, lancedb, tesseract) and poppler-utils, as for the
project, plus the source PDFs of the corpora (``apt-get install bash-doc glpk-doc
debmake-doc``). ``ingest_corpus.py`` builds the corpora into ``--workdir`` once: body
pages of three real manuals as text-layer PDFs (``text``), other pages degraded like a
scan and written back as image-only PDFs (``scans``, every page OCRed) and as PNGs
(``pngs``), and the three manuals end to end as one 516-page PDF (``big``).
``RETRIEVER_CACHE_DIR`` points into ``--workdir``, so the ONNX export of the query model
is made once, not in a timed run.

Rows:

* ``stage``: CPU time per page of each stage, run one after the other in this process:
  text layer (``pdftotext`` per range), rasterization (``pdftoppm`` per range at 150 dpi;
  for text PDFs only what an image encoder would pay, since OCR is not needed), image
  decoding (PNGs), OCR (tesseract, one thread), encoding (text/minilm as the SDK creates
  it, ``--threads`` torch threads), commit (a LanceDB ``add`` per document). CPU counts
  this process's threads and its finished children (poppler, tesseract).
* ``bound``: what those imply on this machine: serial time per page (the stages one after
  another), and the pipeline's bound, ``max(encode + commit, produce / workers, all CPU /
  cores)``: the main process encodes while ``--workers`` processes produce, and all of
  them share the machine's cores.
* ``run``: measured pages/s, end to end: ``Retriever(...).index(files, workers=0)``
  against ``workers=N`` (whatever ``retriever.pipeline`` feeds it with), and this
  benchmark's own loop over ``PageProducer`` (workers 0 and N) feeding the same encoder and
  a LanceDB indexer in this process: the overlap the producer gives by itself. The encoder
  is loaded before the clock starts.
* ``startup``: wall time until ``--workers`` fresh worker processes are ready, and CPU per
  worker (imports), paid once per run.
* ``range``: text-layer CPU per page by pages per ``pdftotext`` call (4, 8, 16, the whole
  document) on the first source manual: what ``RANGE_PAGES`` trades against balance.
* ``memory``: peak RSS (``VmHWM``) for the 516-page PDF, each in a fresh process:
  ``old``, the document-at-once path before the producer (the whole text layer at once,
  every record kept until the commit); ``producer`` with records kept per document (as
  ``document_records`` still does) and with records dropped per batch (as staging does).
  Workers' peak is the largest child's ``ru_maxrss``. ``--rss-encoder fake`` (default)
  encodes with a stand-in that makes minilm's vectors (one 384-d vector per line) without
  the model's cost; ``minilm`` runs the real model (much longer).

Figures on a shared machine vary with its load (printed with the results); CPU columns
vary least.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

CORPORA = ("text", "scans", "pngs")
STAGES = ("open", "text layer", "rasterize", "decode", "ocr", "encode", "commit")
PRODUCE = ("open", "text layer", "rasterize", "decode", "ocr")

from ingest_memory import memory_rows  # noqa: E402
from ingest_parts import encoder_for, jobs_for, lancedb_indexer, ocr_engine, warm  # noqa: E402


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/retriever-ingest-bench"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the encoder")
    ap.add_argument("--text-pages", type=int, default=8, help="per source PDF")
    ap.add_argument("--scan-pages", type=int, default=3, help="per source PDF")
    ap.add_argument("--png-pages", type=int, default=2, help="per source PDF")
    ap.add_argument("--quick", action="store_true", help="fewer pages, no memory rows")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--rss-encoder", choices=("fake", "minilm"), default="fake")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class _Meter:
    def __init__(self) -> None:
        self.cpu = dict.fromkeys(STAGES, 0.0)
        self.wall = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        cpu, wall = _cpu(), time.perf_counter()
        yield
        self.cpu[stage] += _cpu() - cpu
        self.wall[stage] += time.perf_counter() - wall


# --- stage times --------------------------------------------------------------------------


def _stage_times(files: list[Path], encoder, ocr, workdir: Path) -> dict:
    """The producer's work, stage by stage, then encoding and commits, in this process."""
    from retriever.ingest.document import draw_pages
    from retriever.ingest.pagework import ProducerSettings, open_job, split_ranges
    from retriever.ingest.producer import RANGE_PAGES
    from retriever.pipeline import page_batch
    from retriever.regions import text_layer_regions
    from retriever.types import Page, PageRecord

    meter = _Meter()
    settings = ProducerSettings(encoder.dpi, 64_000_000, False, ocr)
    indexer = lancedb_indexer(encoder, workdir / "stage-index")
    pages_done = 0
    for job in jobs_for(files):
        with meter("open"):
            document = open_job(job, settings)
        pages: list[Page] = []
        for task in split_ranges(document, job, RANGE_PAGES):
            kind, plans = task.kind, task.plans
            layer = {}
            if kind == "pdf":
                with meter("text layer"):
                    layer = text_layer_regions(job.path, plans[0].number, plans[-1].number)
            stage = "rasterize" if kind == "pdf" else "decode"
            with meter(stage):  # every page: for text PDFs, what an image encoder pays
                drawn = dict((plan.number, image) for plan, image in
                             draw_pages(job.path, kind, plans, 64_000_000))  # type: ignore[arg-type]
            for plan in plans:
                page = Page(job.doc_id, job.source, plan.number, *plan.size, dpi=plan.dpi)
                if layer.get(plan.number):
                    page.regions, page.has_text_layer = layer[plan.number], True
                else:
                    with meter("ocr"):
                        page.regions = ocr.recognize(drawn[plan.number])
                pages.append(page)
            drawn.clear()
        records = []
        per_call = page_batch(encoder)
        for start in range(0, len(pages), per_call):
            batch = pages[start:start + per_call]
            with meter("encode"):
                vectors = encoder.encode_pages(batch)
            records.extend(PageRecord.from_page(p, v) for p, v in zip(batch, vectors))
        with meter("commit"):
            indexer.add(records)
        pages_done += len(pages)
    indexer.close()
    return {"pages": pages_done,
            "cpu_ms": {s: 1000 * meter.cpu[s] / pages_done for s in STAGES},
            "wall_ms": {s: 1000 * meter.wall[s] / pages_done for s in STAGES},
            "text_pdf": all(f.suffix == ".pdf" for f in files)}


def _bound(stages: dict, workers: int, cores: int, text_pdf: bool) -> dict:
    cpu, wall = stages["cpu_ms"], stages["wall_ms"]
    produce = [s for s in PRODUCE if not (text_pdf and s == "rasterize")]  # not needed
    produce_cpu = sum(cpu[s] for s in produce)
    produce_wall = sum(wall[s] for s in produce)
    main_wall = wall["encode"] + wall["commit"]
    all_cpu = produce_cpu + cpu["encode"] + cpu["commit"]
    serial = produce_wall + main_wall
    bound = max(main_wall, produce_cpu / max(workers, 1), all_cpu / cores)
    return {"serial_ms_per_page": round(serial, 1), "serial_pages_per_s": round(1000 / serial, 2),
            "pipeline_bound_ms_per_page": round(bound, 1),
            "pipeline_bound_pages_per_s": round(1000 / bound, 2),
            "limited_by": "encode+commit" if bound == main_wall else
                          ("produce" if bound == produce_cpu / max(workers, 1) else "cores")}


def _startup_row(workers: int, ocr) -> dict:
    from retriever.ingest.pagework import ProducerSettings
    from retriever.ingest.workerpool import WorkerPool

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    pool = WorkerPool(workers, ProducerSettings(150, 64_000_000, False, ocr))
    pool.start()
    while not all(w.ready for w in pool._workers):  # noqa: SLF001 - a benchmark may look
        pool.receive(1.0)
    ready = time.perf_counter() - started
    pool.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"kind": "startup", "workers": workers, "ready_s": round(ready, 2),
            "cpu_s_per_worker": round(cpu / workers, 2)}


def _range_rows(pdf: Path) -> list[dict]:
    from retriever.ingest.pdf import read_pdf_info
    from retriever.regions import text_layer_regions

    count = read_pdf_info(pdf).page_count
    rows = []
    for size in (4, 8, 16, None):
        cpu = _cpu()
        for first in range(1, count + 1, size or count):
            text_layer_regions(pdf, first, min(count, first + (size or count) - 1))
        rows.append({"kind": "range", "pdf": pdf.name, "pages": count,
                     "pages_per_call": size or "all",
                     "cpu_ms_per_page": round(1000 * (_cpu() - cpu) / count, 1)})
    return rows


# --- end-to-end runs ------------------------------------------------------------------------


def _sdk_run(files: list[Path], workers: int, workdir: Path, threads: int) -> dict | None:
    from retriever import Retriever

    if "workers" not in inspect.signature(Retriever.index).parameters:
        return None
    data = workdir / f"sdk-{workers}"
    shutil.rmtree(data, ignore_errors=True)
    retriever = Retriever("bench", data_dir=data)
    import torch

    torch.set_num_threads(threads)
    warm(retriever.encoder)
    started = time.perf_counter()
    report = retriever.index([str(f) for f in files], workers=workers)
    seconds = time.perf_counter() - started
    retriever.close() if hasattr(retriever, "close") else None
    return {"pages": report.pages, "seconds": round(seconds, 2),
            "pages_per_s": round(report.pages / seconds, 2), "failed": len(report.failed)}


def _producer_run(files: list[Path], workers: int, encoder, ocr, workdir: Path) -> dict:
    """PageProducer feeding the encoder and a LanceDB indexer, one commit per document."""
    from retriever.ingest.producer import DocumentEnd, PageProducer, PageReady
    from retriever.pipeline import page_batch
    from retriever.types import PageRecord

    indexer = lancedb_indexer(encoder, workdir / f"producer-{workers}")
    per_call = page_batch(encoder)
    pages, records, batch = 0, [], []
    started = time.perf_counter()
    with PageProducer(workers=workers, dpi=encoder.dpi, max_pixels=64_000_000,
                      needs_image=encoder.needs_image, ocr=ocr) as producer:
        for event in producer.run(jobs_for(files)):
            if isinstance(event, PageReady):
                batch.append(event.page)
            if batch and (len(batch) >= per_call or isinstance(event, DocumentEnd)):
                vectors = encoder.encode_pages(batch)
                records.extend(PageRecord.from_page(p, v) for p, v in zip(batch, vectors))
                batch = []
            if isinstance(event, DocumentEnd):
                indexer.add(records)
                pages += len(records)
                records = []
            del event
    seconds = time.perf_counter() - started
    indexer.close()
    return {"pages": pages, "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 2)}


# --- the report -----------------------------------------------------------------------------


def _print_table(rows: list[dict]) -> None:
    for row in rows:
        kind = row["kind"]
        if kind == "machine":
            print(f"machine: {row['cores']} cores, load average {row['load']}, "
                  f"{row['workers']} workers, {row['threads']} encoder threads")
        elif kind == "stage":
            cpu = "  ".join(f"{s} {row['cpu_ms'][s]:.0f}" for s in STAGES)
            print(f"\n[{row['corpus']}] {row['pages']} pages, CPU ms/page: {cpu}")
        elif kind == "bound":
            print(f"[{row['corpus']}] serial {row['serial_pages_per_s']} pages/s; pipeline "
                  f"bound {row['pipeline_bound_pages_per_s']} pages/s "
                  f"(limited by {row['limited_by']})")
        elif kind == "run":
            print(f"[{row['corpus']}] {row['path']:<22} workers={row['workers']}: "
                  f"{row['pages_per_s']} pages/s ({row['pages']} pages, {row['seconds']} s)")
        elif kind == "startup":
            print(f"\n{row['workers']} workers ready in {row['ready_s']} s, "
                  f"{row['cpu_s_per_worker']} CPU s each")
        elif kind == "range":
            print(f"[{row['pdf']} {row['pages']} pages] text layer, {row['pages_per_call']} "
                  f"pages per pdftotext: {row['cpu_ms_per_page']} CPU ms/page")
        elif kind == "memory":
            print(f"[big {row['pages'] or 516} pages] {row['mode']:<14} peak {row['peak_mb']} MB "
                  f"(after start {row['baseline_mb']} MB; largest child "
                  f"{row['largest_child_mb']} MB; {row['seconds']} s, encoder {row['encoder']})")


def main() -> None:
    args = _parse()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("RETRIEVER_CACHE_DIR", str(args.workdir / "cache"))
    if args.quick:
        args.text_pages, args.scan_pages, args.png_pages, args.no_memory = 4, 1, 1, True
    import ingest_corpus

    corpus = ingest_corpus.build(args.workdir, args.text_pages, args.scan_pages,
                                 args.png_pages)
    encoder, ocr = encoder_for(args.threads), ocr_engine()
    warm(encoder)
    cores = os.cpu_count() or 1
    rows: list[dict] = [{"kind": "machine", "cores": cores, "workers": args.workers,
                         "threads": args.threads,
                         "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}]

    def emit(row: dict) -> None:
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)

    if args.json:
        print(json.dumps(rows[0]), flush=True)
    import retriever.pipeline as pipeline

    real = getattr(pipeline, "PageProducer", None)
    sdk_path = "sdk index" + ("" if real is not None and real.__module__ ==
                              "retriever.ingest.producer" else " (stand-in producer)")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        for name in CORPORA:
            files = corpus.files(name)
            stages = _stage_times(files, encoder, ocr, work)
            emit({"kind": "stage", "corpus": name, **stages})
            emit({"kind": "bound", "corpus": name, "workers": args.workers, "cores": cores,
                  **_bound(stages, args.workers, cores, name == "text")})
            for workers in (0, args.workers):
                emit({"kind": "run", "corpus": name, "path": "producer loop",
                      "workers": workers, **_producer_run(files, workers, encoder, ocr, work)})
            for workers in (0, args.workers):
                result = _sdk_run(files, workers, work, args.threads)
                if result is not None:
                    emit({"kind": "run", "corpus": name, "path": sdk_path,
                          "workers": workers, **result})
    emit(_startup_row(args.workers, ocr))
    sources = [p for p in ingest_corpus.SOURCES if p.exists()]
    for row in _range_rows(sources[0]):
        emit(row)
    if not args.no_memory:
        for row in memory_rows(args, corpus.big):
            emit(row)
    if not args.json:
        _print_table(rows)


if __name__ == "__main__":
    main()

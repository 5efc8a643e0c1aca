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
import subprocess
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
    ap.add_argument("--probe", help=argparse.SUPPRESS)  # internal: one memory measurement
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


# --- components, made the way the SDK makes them ---------------------------------------


def _encoder(threads: int):
    import torch

    from retriever.plugin_host import get_registry

    torch.set_num_threads(threads)
    return get_registry().create("encoder", "text/minilm")


def _ocr():
    from retriever.plugin_host import get_registry

    engine = get_registry().create("ocr", "tesseract")
    engine.check_available()
    return engine


def _indexer(encoder, where: Path):
    from retriever.manifest import Manifest
    from retriever.plugin_host import get_registry

    shutil.rmtree(where, ignore_errors=True)
    spec = get_registry().get("indexer", "lancedb")
    return spec.create(path=where, manifest=Manifest(encoder=encoder.identity,
                                                     indexer="lancedb"))


def _warm(encoder) -> None:
    """Load the model (and its ONNX export) before any clock starts."""
    from retriever.types import Page, Region

    page = Page("0" * 20, "warm", 1, 100, 100,
                regions=[Region((0.1, 0.1, 0.9, 0.2), "warm up the model", "paragraph")])
    encoder.encode_pages([page])


def _jobs(files: list[Path]):
    from retriever.ingest import content_hash
    from retriever.ingest.producer import DocumentJob

    return [DocumentJob(f, content_hash(f), str(f)) for f in files]


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
    indexer = _indexer(encoder, workdir / "stage-index")
    pages_done = 0
    for job in _jobs(files):
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
    _warm(retriever.encoder)
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

    indexer = _indexer(encoder, workdir / f"producer-{workers}")
    per_call = page_batch(encoder)
    pages, records, batch = 0, [], []
    started = time.perf_counter()
    with PageProducer(workers=workers, dpi=encoder.dpi, max_pixels=64_000_000,
                      needs_image=encoder.needs_image, ocr=ocr) as producer:
        for event in producer.run(_jobs(files)):
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


# --- peak memory (each in a fresh process) ------------------------------------------------------


class _LineVectors:
    """minilm's output shape (one 384-d vector per text line, its box) without the model."""

    name, dim, kind, dpi = "bench/lines", 384, "multi", 150
    needs_image, needs_regions = False, True

    def encode_pages(self, pages):
        import numpy as np

        from retriever.types import MultiVector

        out = []
        for page in pages:
            boxes = [line.bbox for region in page.regions for line in region.lines]
            vectors = np.random.default_rng(len(boxes)).standard_normal((len(boxes), 384))
            out.append(MultiVector.normalized(vectors.astype(np.float32),
                                              np.asarray(boxes, np.float32).reshape(-1, 4)))
        return out


def _vmhwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _probe(mode: str, path: Path, workers: int, rss_encoder: str, threads: int) -> dict:
    from retriever.ingest import open_document
    from retriever.ingest.producer import PageProducer, PageReady
    from retriever.pipeline import page_batch
    from retriever.regions import text_layer_regions
    from retriever.types import PageRecord

    encoder = _LineVectors() if rss_encoder == "fake" else _encoder(threads)
    if rss_encoder != "fake":
        _warm(encoder)
    baseline = _vmhwm_mb()
    per_call = page_batch(encoder)
    kept: list[PageRecord] = []
    batch = []
    started = time.perf_counter()

    def flush() -> None:
        vectors = encoder.encode_pages(batch)
        records = [PageRecord.from_page(p, v) for p, v in zip(batch, vectors)]
        if mode != "producer-drop":
            kept.extend(records)
        batch.clear()

    if mode == "old":  # what pipeline._pages_with_regions did before the producer
        layer = text_layer_regions(path)
        document = open_document(path, dpi=encoder.dpi, render=False)
        for page in document.pages():
            page.regions, page.has_text_layer = layer.get(page.page_number) or [], True
            batch.append(page)
            if len(batch) >= per_call:
                flush()
    else:
        (job,) = _jobs([path])
        with PageProducer(workers=workers, dpi=encoder.dpi, max_pixels=64_000_000,
                          needs_image=False, ocr=None) as producer:
            for event in producer.run([job]):
                if isinstance(event, PageReady):
                    batch.append(event.page)
                    if len(batch) >= per_call:
                        flush()
                del event
    if batch:
        flush()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"mode": mode, "pages": len(kept) if kept else None,
            "seconds": round(time.perf_counter() - started, 1),
            "baseline_mb": round(baseline, 1), "peak_mb": round(_vmhwm_mb(), 1),
            "largest_child_mb": round(children, 1)}


def _memory_rows(args: argparse.Namespace, big: Path) -> list[dict]:
    rows = []
    for mode in ("old", "producer-keep", "producer-drop"):
        argv = [sys.executable, __file__, "--probe", mode, "--workdir", str(big),
                "--workers", str(args.workers), "--threads", str(args.threads),
                "--rss-encoder", args.rss_encoder]
        done = subprocess.run(argv, check=True, capture_output=True, text=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row.update(kind="memory", encoder=args.rss_encoder,
                   workers=0 if mode == "old" else args.workers)
        rows.append(row)
    return rows


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
    if args.probe:
        print(json.dumps(_probe(args.probe, args.workdir, args.workers, args.rss_encoder,
                                args.threads)))
        return
    if args.quick:
        args.text_pages, args.scan_pages, args.png_pages, args.no_memory = 4, 1, 1, True
    import ingest_corpus

    corpus = ingest_corpus.build(args.workdir, args.text_pages, args.scan_pages,
                                 args.png_pages)
    encoder, ocr = _encoder(args.threads), _ocr()
    _warm(encoder)
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
        for row in _memory_rows(args, corpus.big):
            emit(row)
    if not args.json:
        _print_table(rows)


if __name__ == "__main__":
    main()

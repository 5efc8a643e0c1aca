"""One evaluation run: index the files, make or read queries, run every system, score.

Our system goes through the public SDK (``Retriever.index`` and ``search_many``, with
``search_options`` passed through so other search modes can be compared); the baselines
read back the text of the very pages the index stored and rank them in the same process.
"""

from __future__ import annotations

__all__ = ["DEFAULT_SEARCH_OPTIONS", "SYSTEMS", "EvalConfig", "EvalResult", "evaluate"]

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RetrieverError, UsageError
from .baselines import BM25Pages, ChunkEmbeddings, RankedPage
from .catalog import IndexedPage, PageCatalog
from .generate import generate_queries
from .metrics import grounding_score
from .pagetext import PageText, page_text
from .queries import Query, load_queries
from .report import Outcome, summarize

SYSTEMS = ("ours", "bm25", "chunks")
#: what ``retriever search`` returns by default: at most 5 regions per page
DEFAULT_SEARCH_OPTIONS: dict[str, Any] = {"max_regions": 5}
_SEARCH_BATCH = 32

Log = Callable[[str], None]


@dataclass
class EvalConfig:
    """What to evaluate and how; the defaults match ``retriever eval``."""

    paths: Sequence[Path]
    query_files: Sequence[Path] = ()
    queries: Sequence[Query] = ()  # given in memory, besides the files and generated ones
    generate: bool = True
    max_queries: int = 100  # per generated kind
    seed: int = 0
    as_images: bool = False
    k: int = 10
    systems: Sequence[str] = SYSTEMS
    collection: str = "eval"
    data_dir: Path | None = None
    encoder: str | None = None
    encoder_options: dict[str, Any] = field(default_factory=dict)
    search_options: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SEARCH_OPTIONS))
    ocr: bool = True
    # The chunk recipe's encoder: MiniLM with sentence-transformers' own 256-token window.
    chunk_encoder: str = "text/minilm"
    chunk_encoder_options: dict[str, Any] = field(default_factory=lambda: {"max_length": 256})
    chunk_size: int = 500
    chunk_overlap: int = 50


@dataclass
class EvalResult:
    rows: list[dict[str, Any]]
    outcomes: list[Outcome]
    info: dict[str, Any]


def _check(config: EvalConfig) -> None:
    unknown = [s for s in config.systems if s not in SYSTEMS]
    if unknown or not config.systems:
        raise UsageError(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)}")
    if config.k < 1:
        raise UsageError(f"k must be at least 1, got {config.k}")
    if config.max_queries < 0:
        raise UsageError(f"max_queries must be >= 0, got {config.max_queries}")
    if not (config.generate or config.query_files or config.queries):
        raise UsageError("nothing to evaluate: give --queries FILE or allow generated queries")


def _queries(config: EvalConfig, pdfs: Sequence[Path], log: Log) -> tuple[list[Query], dict]:
    from ..regions import text_layer_regions

    info: dict[str, Any] = {}
    queries: list[Query] = list(config.queries)
    if config.generate and config.max_queries > 0 and pdfs:
        layers = {str(p): text_layer_regions(p) for p in pdfs}
        made = generate_queries(layers, max_queries=config.max_queries, seed=config.seed)
        queries += made.queries
        info["generated"] = dict(Counter(q.kind for q in made.queries))
        info["eligible_blocks"] = made.eligible_blocks
        info["dropped"] = dict(made.dropped)
        log(f"generated {len(made.queries)} queries from {made.eligible_blocks} blocks "
            f"of {len(pdfs)} PDF(s); dropped {dict(made.dropped) or 'none'}")
    for path in config.query_files:
        loaded = load_queries(path)
        queries += loaded
        log(f"read {len(loaded)} queries from {path}")
    return queries, info


def _index(retriever: Any, files: Sequence[Path], log: Log) -> tuple[float, Any]:
    last = [0.0]

    def progress(stage: str, done: int, total: int, detail: str) -> None:
        now = time.monotonic()
        if stage == "files" and done < total and now - last[0] > 2.0:
            last[0] = now
            log(f"indexing {done + 1}/{total}: {Path(detail).name}")

    start = time.perf_counter()
    report = retriever.index(list(files), progress=progress)
    seconds = time.perf_counter() - start
    for failure in report.failed:
        log(f"warning: not indexed: {failure}")
    log(f"indexed {len(report.indexed)} file(s), {report.pages} page(s) in {seconds:.1f} s "
        f"({len(report.unchanged)} unchanged)")
    return seconds, report


def _catalog(retriever: Any, files: Sequence[Path], origins: dict[Path, tuple[Path, int]]
             ) -> tuple[PageCatalog, list[PageText]]:
    from ..ingest import open_document

    indexer = retriever.indexer
    doc_of = {source: doc_id for doc_id, source in indexer.documents().items()}
    pages: list[IndexedPage] = []
    for path in files:
        source = str(path.resolve())
        doc_id = doc_of.get(source)
        if doc_id is None:
            continue  # failed to index: already reported
        count = open_document(path, render=False, doc_id=doc_id).page_count
        origin, first = origins.get(path, (path, 1))
        for n in range(1, count + 1):
            pages.append(IndexedPage(f"{doc_id}:{n}", source, n, str(origin.resolve()),
                                     first + n - 1))
    texts: list[PageText] = []
    for start in range(0, len(pages), 64):
        keys = [p.key for p in pages[start:start + 64]]
        texts += [page_text(key, record.regions) for key, record in zip(keys, indexer.get(keys))]
    return PageCatalog(pages), texts


def _ours(retriever: Any, texts: Sequence[str], k: int, options: dict[str, Any],
          log: Log) -> list[list[RankedPage]]:
    from ..grounding import GroundingOptions

    options = dict(options)  # max_regions=0 means every region kept, as in the CLI
    # grounding fields given flat (-s level=line) travel as grounding={...}
    fields = set(GroundingOptions.__dataclass_fields__) - {"aggregate", "max_regions"}
    flat = {key: options.pop(key) for key in list(options) if key in fields}
    if flat:
        options["grounding"] = {**options.get("grounding", {}), **flat}
    out: list[list[RankedPage]] = []
    for start in range(0, len(texts), _SEARCH_BATCH):
        hits = retriever.search_many(list(texts[start:start + _SEARCH_BATCH]), k, **options)
        out += [[RankedPage(f"{h.doc_id}:{h.page}", h.score, tuple(r.bbox for r in h.regions))
                 for h in page_hits] for page_hits in hits]
        if start and start % (_SEARCH_BATCH * 8) == 0:
            log(f"ours: {start}/{len(texts)} queries")
    return out


def _outcomes(system: str, resolved: Sequence[tuple[Query, str]],
              ranked: Sequence[Sequence[RankedPage]], returns_regions: bool) -> list[Outcome]:
    out = []
    for (query, truth), pages in zip(resolved, ranked):
        rank = next((i for i, p in enumerate(pages, start=1) if p.key == truth), None)
        grounding = None
        if query.bbox is not None and rank is not None and returns_regions:
            grounding = grounding_score(pages[rank - 1].regions, query.bbox)
        out.append(Outcome(system, query, truth, rank, grounding, returns_regions,
                           pages[0].key if pages else None))
    return out


def evaluate(config: EvalConfig, log: Log | None = None) -> EvalResult:
    """Run the whole evaluation; progress goes to ``log`` (e.g. stderr)."""
    from ..ingest import discover, kind_for_path
    from ..plugin_host import get_registry
    from ..sdk import Retriever

    log = log or (lambda message: None)
    _check(config)
    files, failures = discover(config.paths)
    for failure in failures:
        log(f"warning: skipped {failure}")
    if not files:
        raise UsageError("no documents to evaluate", hint="give PDF or image files or folders")
    pdfs = [f for f in files if kind_for_path(f) == "pdf"]
    queries, info = _queries(config, pdfs, log)
    info["files"] = len(files)
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="retriever-eval-")))
        indexed_files, origins = list(files), {}
        if config.as_images:
            from .images import render_pdf_pages

            images = render_pdf_pages(pdfs, work / "images")
            origins = {im.path: (im.origin, im.page) for im in images}
            indexed_files = [f for f in files if f not in pdfs] + [im.path for im in images]
            log(f"rendered {len(images)} PDF page(s) as images without a text layer")
        retriever = Retriever(config.collection, data_dir=config.data_dir or work / "data",
                              encoder=config.encoder, encoder_options=config.encoder_options,
                              ocr="tesseract" if config.ocr else None)
        stack.callback(retriever.close)
        info["index_s"], report = _index(retriever, indexed_files, log)
        catalog, page_texts = _catalog(retriever, indexed_files, origins)
        if not catalog.pages:
            raise RetrieverError("no page was indexed; nothing to evaluate")
        info["pages"] = len(catalog.pages)
        resolved, missing = catalog.resolve(queries)
        if missing:
            log(f"warning: {sum(missing.values())} queries without an indexed answer page: "
                f"{dict(missing)}")
        info["unresolved"] = dict(missing)
        if not resolved:
            raise RetrieverError("no query has its answer page in the index",
                                 hint="check the queries' source names and pages")
        texts = [q.text for q, _ in resolved]
        outcomes: list[Outcome] = []
        timings: dict[str, dict[str, float]] = {}
        for system in config.systems:
            started = time.perf_counter()
            if system == "ours":
                built = time.perf_counter()
                ranked = _ours(retriever, texts, config.k, config.search_options, log)
                regions = True
            elif system == "bm25":
                bm25 = BM25Pages(page_texts)
                built = time.perf_counter()
                ranked, regions = bm25.rank(texts, config.k), False
            else:
                encoder = get_registry().create("encoder", config.chunk_encoder,
                                                **config.chunk_encoder_options)
                chunks = ChunkEmbeddings(page_texts, encoder, size=config.chunk_size,
                                         overlap=config.chunk_overlap)
                built = time.perf_counter()
                info["chunks"] = chunks.n_chunks
                ranked, regions = chunks.rank(texts, config.k), True
            done = time.perf_counter()
            timings[system] = {"build_s": built - started,
                               "ms_per_query": 1000 * (done - built) / len(texts)}
            log(f"{system}: built in {built - started:.1f} s, "
                f"{timings[system]['ms_per_query']:.1f} ms/query")
            outcomes += _outcomes(system, resolved, ranked, regions)
        info["timings"] = timings
    info["queries"] = dict(Counter(q.group for q, _ in resolved))
    return EvalResult(summarize(outcomes, config.k, config.systems), outcomes, info)

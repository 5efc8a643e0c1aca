"""The Python SDK: ``Retriever`` indexes files into a collection and searches it.

The CLI (``retriever index``, ``search``, ``delete``, ``eval``) is a thin layer over this
class: it formats what the class returns and adds nothing to it.
"""

from __future__ import annotations

__all__ = ["Retriever", "IndexReport", "DeleteReport", "ProgressCallback", "DEFAULT_MAX_PIXELS"]

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .collection_open import (collection_info, delete_collection, find_backend,
                              list_collections, open_indexer)
from .errors import IndexInterrupted, RetrieverError, UsageError
from .grounding import Aggregate, GroundingOptions, resolve_options
from .indexing import (
    DeleteReport,
    IndexReport,
    ProgressCallback,
    delete_targets,
    index_files,
    pending_documents,
    stored_paths,
    sync_roots,
)
from .ingest import discover
from .locking import writes
from .maintenance import auto_optimize
from .plugin_host import get_registry
from .protocols import Encoder, Indexer, OCREngine
from .compression import batch_compressor
from .search.hits import search_hits
from .search.quantization import check_quantization
from .storage import ObjectStore, object_store
from .search.hybrid import Mode, check_mode
from .types import Hit

if TYPE_CHECKING:
    from .distributed.ray_index import RayIndexOptions
    from .context import Context

DEFAULT_MAX_PIXELS = 64_000_000


def _merge_quantization(argument: str | None, option: str | None) -> str | None:
    if argument and option and argument != option:
        raise UsageError(f"quantization={argument!r} and indexer option "
                         f"quantization={option!r} disagree", hint="give it once")
    return argument or option


class Retriever:
    """One collection: open (or create on first ``index``), index files, search.

    ``encoder`` and ``encoder_options`` are needed only for a new collection; an existing
    one rebuilds its encoder from the manifest it stored, and refuses a different one.
    ``quantization`` ("none", "int8", "binary") is how a new collection stores codes for
    two-stage search; an existing one keeps its own and refuses a different one.
    ``indexer_options`` go to the backend, typed by its declared options (``retriever
    plugins list``): build-time ones (FAISS index_type, dtype) are recorded in a new
    collection's manifest and refused when they differ for an existing one; the others
    (nprobe, candidates, rerank, threads) apply each time the collection is opened.
    ``compress`` (``NAME[:FACTOR][,KEY=VALUE...]``, e.g. "pool:3") is the compressor a
    new collection runs on every page's vectors before storing them
    (``retriever.compression``); an existing one keeps its own and refuses a different one.
    ``data_dir`` may be an object-store URI (``s3://bucket/prefix``; LanceDB collections
    only, ``retriever.storage``), reached with ``storage_options`` (Lance's keys, e.g.
    ``{"aws_endpoint": ..., "allow_http": "true"}``) and the usual environment.
    """

    def __init__(
        self,
        collection: str = config.DEFAULT_COLLECTION,
        *,
        data_dir: str | Path | None = None,
        encoder: str | None = None,
        encoder_options: dict[str, Any] | None = None,
        indexer: str | None = None,
        ocr: str | None = config.DEFAULT_OCR,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        quantization: str | None = None,
        indexer_options: dict[str, Any] | None = None,
        compress: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.collection = config.validate_collection_name(collection)
        #: the data directory's object store; None when it is a local directory
        self.store: ObjectStore | None = object_store(data_dir, storage_options)
        self._compress = compress
        self._indexer_options = dict(indexer_options or {})
        # one name for one setting: quantization= and indexer_options={"quantization": ..}
        quantization = _merge_quantization(quantization,
                                           self._indexer_options.pop("quantization", None))
        self._quantization = check_quantization(quantization) if quantization else None
        # root: local files (locks, staging, crops); on object storage a cache directory
        # keyed by the URI, while path (the collection itself) is a URI in the bucket
        self.root: Path
        self.path: Path | str
        if self.store is not None:
            self.root = self.store.local_dir
            self.path = self.store.collection_uri(collection)
            if indexer is not None:
                self.store.check_backend(indexer)
        else:
            self.root = config.data_dir(data_dir)
            self.path = config.collection_path(collection, self.root)
        self._encoder_name = encoder
        self._encoder_options = dict(encoder_options or {})
        self._indexer_name = indexer
        self._ocr_name = ocr
        self.max_pixels = max_pixels
        self._encoder: Encoder | None = None
        self._indexer: Indexer | None = None
        self._ocr: OCREngine | None = None

    # -- collections ------------------------------------------------------------------

    list_collections = staticmethod(list_collections)
    delete_collection = staticmethod(delete_collection)

    def _backend(self) -> str | None:
        if self.store is not None:
            return self.store.backend_of(self.collection)
        return find_backend(Path(self.path))

    @property
    def exists(self) -> bool:
        return self._backend() is not None

    # -- components, created lazily ---------------------------------------------------

    def _open_indexer(self, create_with: Encoder | None) -> Indexer:
        if self._indexer is not None:
            return self._indexer
        where_missing = self.store.uri if self.store else self.root
        indexer = open_indexer(self.collection, self.path, self.store,
                               where_missing=where_missing, backend=self._backend(),
                               asked_backend=self._indexer_name,
                               indexer_options=self._indexer_options,
                               quantization=self._quantization, compress=self._compress,
                               create_with=create_with)
        self._indexer = indexer
        return self._indexer

    @property
    def encoder(self) -> Encoder:
        """The collection's encoder: as stored in its manifest, or as asked for."""
        if self._encoder is None:
            name, options = self._encoder_choice()
            encoder = get_registry().create("encoder", name, **options)
            if self.exists:
                self.indexer.manifest.check_compatible(encoder.identity, self.collection)
            self._encoder = encoder
        return self._encoder

    def _encoder_choice(self) -> tuple[str, dict[str, Any]]:
        """The registry name and options the collection's encoder is made with (here, or
        by each worker of a distributed job)."""
        if not self.exists:
            return self._encoder_name or config.DEFAULT_ENCODER, dict(self._encoder_options)
        stored = self._open_indexer(None).manifest.encoder
        name = self._encoder_name or stored.name
        if self._encoder_name:
            return name, dict(self._encoder_options)
        # Options given now (device, batch size) add to the stored ones; any that change
        # the vectors are caught by check_compatible. A build option the manifest
        # predates takes the value it was built with (its legacy).
        return name, {**get_registry().get("encoder", name).reopen_options(stored.options),
                      **self._encoder_options}

    @property
    def indexer(self) -> Indexer:
        """The collection's index; raises CollectionNotFoundError if it does not exist yet."""
        return self._open_indexer(None)

    def _ocr_engine(self) -> OCREngine | None:
        if self._ocr_name is None:
            return None
        if self._ocr is None:
            engine = get_registry().create("ocr", self._ocr_name)
            engine.check_available()  # missing tesseract is reported before any work
            self._ocr = engine
        return self._ocr

    # -- indexing ---------------------------------------------------------------------

    @writes("index")  # one writer per collection: a second one gets CollectionBusyError
    def index(
        self,
        paths: Sequence[str | Path],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        force: bool = False,
        sync: bool = False,
        progress: ProgressCallback | None = None,
        workers: int | None = None,
        ray: RayIndexOptions | None = None,
    ) -> IndexReport:
        """Index files and directories; unchanged files are skipped, changed ones replaced.

        Each file is one commit (its new version and the removal of the old one together),
        so an interrupted run keeps every document it finished and none half-written. A
        file whose content is stored under another path (moved, copied) is recorded at its
        new path without encoding. ``sync``: afterwards, forget recorded paths under
        ``paths`` whose file is gone (documents left without a path are deleted). Bad
        files are reported, never fatal. Ctrl-C raises ``IndexInterrupted`` (a
        KeyboardInterrupt) carrying the report of what was committed until then; the
        pages of a document it was encoding stay staged, and the next run encodes only the
        rest. ``workers``: processes that rasterize, read text layers and OCR ahead of the
        encoder (default: one per core; 0: all in this process). ``ray``: encode on a Ray
        cluster instead (``retriever.distributed.ray_index``; LanceDB collections).
        """
        report = IndexReport()
        try:
            files, failures = discover(paths, include=include, exclude=exclude)
            report.failed.extend(failures)
            if files:
                from .doctor import require_poppler

                if any(f.suffix.lower() == ".pdf" for f in files):
                    require_poppler()
                ocr = self._ocr_engine()
                encoder: Any = None
                if ray is not None:  # the cluster encodes; what is left needs no encoder
                    indexer, files, encoder = self._index_on_ray(
                        files, ocr, report, force=force, options=ray, progress=progress)
                else:
                    encoder = self.encoder
                    indexer = self._open_indexer(None if self.exists else encoder)
                if files:
                    index_files(indexer, files, encoder, ocr, report,
                                max_pixels=self.max_pixels, force=force, progress=progress,
                                workers=workers,
                                compress=batch_compressor(indexer.manifest.compressor))
            if sync and self.exists:
                sync_roots(self.indexer, paths, report)
            auto_optimize(self._indexer, report, self.collection)  # maintenance.py: the rule
        except KeyboardInterrupt as exc:
            report.interrupted = True
            raise IndexInterrupted(report) from exc
        return report

    def _index_on_ray(self, files: Sequence[Path], ocr: OCREngine | None,
                      report: IndexReport, *, force: bool, options: RayIndexOptions,
                      progress: ProgressCallback | None) -> tuple[Indexer, list[Path], Any]:
        """The cluster's part of ``index(ray=...)``; -> the collection, the files left to
        the local pass (none needs encoding) and what stands in for the encoder there.
        The model is built on the cluster only (``distributed.encoder_traits``)."""
        from .distributed.encoder_traits import EncoderTraits
        from .distributed.ray_index import ray_index_files

        stored = self._backend()  # looked up once: on object storage it is a listing
        backend = stored or self._indexer_name or config.DEFAULT_INDEXER
        if backend != "lancedb":  # before a new collection of the wrong kind is made
            raise UsageError(f"--ray writes Lance fragments: the {backend} backend cannot "
                             "take them", hint="index into a LanceDB collection (the default)")

        def open_indexer(traits: EncoderTraits | None) -> Indexer:
            if stored is None:
                return self._open_indexer(traits)  # type: ignore[arg-type]
            indexer = self._open_indexer(None)
            if traits is not None:
                indexer.manifest.check_compatible(traits.identity, self.collection)
            return indexer

        done = ray_index_files(open_indexer, stored is not None, files, self._encoder_choice(),
                               ocr, report, max_pixels=self.max_pixels, force=force,
                               options=options, progress=progress)
        stand_in = done.traits or self._encoder or EncoderTraits.idle(
            done.indexer.manifest.encoder)
        return done.indexer, done.local, stand_in

    @writes("delete")
    def delete(self, targets: Sequence[str | Path]) -> DeleteReport:
        """Remove documents by doc id or path: a file as indexed, or every file under a
        directory. A document recorded at other paths too keeps those; one commit."""
        return delete_targets(self.indexer, targets)

    def pending(self) -> dict[str, int]:
        """``doc_id -> pages staged`` for documents an interrupted run left half-encoded:
        not searchable yet; the next ``index`` of the same files encodes only the rest."""
        return pending_documents(self.indexer) if self.exists else {}

    def documents(self) -> dict[str, list[str]]:
        """``doc_id -> every path it is recorded at`` (a copied file has several)."""
        return stored_paths(self.indexer)

    # -- search -----------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        regions: bool = True,
        aggregate: Aggregate | None = None,
        max_regions: int | None = None,
        rerank: int | None = None,
        indexer_options: dict[str, Any] | None = None,
        grounding: GroundingOptions | dict[str, Any] | None = None,
        mode: Mode = "hybrid",
    ) -> list[Hit]:
        return self.search_many([query], k, regions=regions, aggregate=aggregate,
                                max_regions=max_regions, rerank=rerank,
                                indexer_options=indexer_options, grounding=grounding,
                                mode=mode)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 5,
        *,
        regions: bool = True,
        aggregate: Aggregate | None = None,
        max_regions: int | None = None,
        rerank: int | None = None,
        indexer_options: dict[str, Any] | None = None,
        grounding: GroundingOptions | dict[str, Any] | None = None,
        mode: Mode = "hybrid",
    ) -> list[list[Hit]]:
        """Top ``k`` pages per query, each with the regions on it that answer.

        ``mode``: "hybrid" (vectors and the full-text index fused, ``retriever.search``),
        "vector" or "lexical" (BM25 over region text; no model is loaded). Hybrid and
        lexical scores rank pages; they are not similarities.

        ``grounding`` (``GroundingOptions`` or a dict of its fields) chooses the regions:
        level, selection, overlap, cap (default 5 per hit); ``aggregate`` and
        ``max_regions`` (0: no cap) override its fields of that name. ``aggregate`` (mean
        or max of the vectors in a region) defaults to the encoder's ``region_aggregate``,
        else "mean". ``rerank``: pages a quantized collection scores exactly after the codes' shortlist (default: the backend's, per format); the same
        as ``indexer_options={"rerank": N}``, which takes any of the backend's search-time
        options (FAISS nprobe, candidates; see ``retriever plugins list``).
        """
        if k < 1:
            raise RetrieverError(f"k must be at least 1, got {k}")
        mode = check_mode(mode)
        # checked before any work: a bad option is a usage error, not a late failure
        ground_options = resolve_options(grounding, aggregate=aggregate,
                                         max_regions=max_regions)
        if any(not isinstance(q, str) or not q.strip() for q in queries):
            # an empty query still embeds to a vector: it would return arbitrary pages
            raise UsageError("empty query: say what to look for",
                             hint='e.g. retriever search "when is the invoice due?"')
        given = {**(indexer_options or {}), **({} if rerank is None else {"rerank": rerank})}
        return search_hits(self.indexer, lambda: self.encoder, queries, k, mode,
                           ground_options, regions=regions, search_options=given)

    def render_html(self, hits: Sequence[Hit], path: str | Path, *, heatmap: bool = False,
                    query: str | None = None) -> list[str]:
        """Write one self-contained HTML file showing each hit's page with its regions
        outlined, scored and their text beside (``retriever.report``).

        Pages are rendered again from their source files at the collection's DPI; a source
        that changed or vanished since indexing gets a notice instead of its page. Returns
        one line per such hit. ``heatmap`` also shades each page by the relevance of its
        stored vectors to ``query`` (needed then: the text the hits were searched with).
        """
        from .report import report_for

        return report_for(self, hits, path, heatmap=heatmap, query=query).notices

    def context(self, query: str, *, k: int = 5, budget: int = 2000,
                tokenizer: Any = None, images: str | None = None,
                crop_dir: str | Path | None = None, **search_options: Any) -> Context:
        """The regions answering ``query``, cited and within ``budget`` tokens, for an LLM
        prompt (``retriever.context``): ``.prompt_text()``, ``.messages(question)``,
        ``.citations``, ``.to_dict()``. ``tokenizer``: None for the approximation in
        ``retriever.tokens``, a Hugging Face tokenizer's local path or cached name (loaded
        offline), a loaded tokenizer or a text -> count function. ``images``: "path" saves
        a PNG crop per cited region (in ``crop_dir``, default DATA_DIR/crops/COLLECTION),
        "base64" inlines it. ``search_options`` go to ``search`` (mode, grounding, ...).
        """
        from .context import build_context

        return build_context(self, query, k=k, budget=budget, tokenizer=tokenizer,
                             images=images, crop_dir=crop_dir,  # type: ignore[arg-type]
                             search_options=search_options)

    def info(self) -> dict[str, Any]:
        """The collection's manifest, documents, pages and stored vectors, as plain data
        (``retriever collections info --json``)."""
        return collection_info(self.collection, self.path, self.indexer)

    def close(self) -> None:
        if self._indexer is not None:
            self._indexer.close()
            self._indexer = None

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

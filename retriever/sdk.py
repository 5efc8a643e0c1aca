"""The Python SDK: ``Retriever`` indexes files into a collection and searches it.

The CLI (``retriever index``, ``search``, ``delete``, ``eval``) is a thin layer over this
class: it formats what the class returns and adds nothing to it.
"""

from __future__ import annotations

__all__ = ["Retriever", "IndexReport", "DeleteReport", "ProgressCallback", "DEFAULT_MAX_PIXELS"]

import inspect
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .errors import (
    CollectionNotFoundError,
    IndexInterrupted,
    RetrieverError,
    UsageError,
)
from .filenames import existing_first
from .grounding import Aggregate, GroundingOptions, ground, resolve_options
from .indexing import (
    DeleteReport,
    IndexReport,
    ProgressCallback,
    delete_targets,
    staging_for,
    index_files,
    stored_paths,
    sync_roots,
)
from .ingest import discover
from .integrity import create_atomically, open_checked
from .locking import writer_lock, writes
from .maintenance import auto_optimize
from .manifest import Manifest
from .plugin_host import get_registry
from .protocols import Encoder, Indexer, OCREngine
from .compression import batch_compressor, check_compressor, open_compressor
from .search.quantization import check_quantization
from .storage import ObjectStore, object_store
from .search.hybrid import Mode, check_mode, grounding_for
from .search.hybrid import rank as rank_pages
from .types import Hit

if TYPE_CHECKING:
    from .distributed.ray_index import RayIndexOptions
    from .context import Context

DEFAULT_MAX_PIXELS = 64_000_000


def _find_backend(path: Path) -> str | None:
    """Collections keep each backend's files in a sub-directory named after it."""
    if not path.is_dir():
        return None
    registry = get_registry()
    for name in registry.names("indexer"):
        if (path / name).is_dir():
            return name
    return None


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

    @staticmethod
    def list_collections(data_dir: str | Path | None = None,
                         storage_options: dict[str, Any] | None = None) -> list[str]:
        store = object_store(data_dir, storage_options)
        if store is not None:
            return store.collections()
        base = config.data_dir(data_dir) / "collections"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    @staticmethod
    def delete_collection(name: str, data_dir: str | Path | None = None,
                          storage_options: dict[str, Any] | None = None) -> None:
        store = object_store(data_dir, storage_options)
        if store is not None:
            store.delete_collection(name)
            return
        path = config.collection_path(name, config.data_dir(data_dir))
        if not path.is_dir():
            raise CollectionNotFoundError(f"no collection named {name!r} in {path.parent}")
        with writer_lock(data_dir, name, "delete_collection"):  # never under a live writer
            shutil.rmtree(path)

    def _backend(self) -> str | None:
        if self.store is not None:
            return self.store.backend_of(self.collection)
        return _find_backend(Path(self.path))

    @property
    def exists(self) -> bool:
        return self._backend() is not None

    # -- components, created lazily ---------------------------------------------------

    def _open_indexer(self, create_with: Encoder | None) -> Indexer:
        if self._indexer is not None:
            return self._indexer
        registry = get_registry()
        backend = self._backend()
        if backend is None and create_with is None:
            raise CollectionNotFoundError(
                f"no collection named {self.collection!r} in "
                f"{self.store.uri if self.store else self.root}",
                hint="index some files first: retriever index PATH --collection "
                     f"{self.collection}",
            )
        if backend is not None and self._indexer_name and backend != self._indexer_name:
            raise RetrieverError(
                f"collection {self.collection!r} uses the {backend} backend, "
                f"not {self._indexer_name}")
        backend = backend or self._indexer_name or config.DEFAULT_INDEXER
        spec = registry.get("indexer", backend)
        where: dict[str, Any]  # where the indexer keeps the collection
        if self.store is not None:
            self.store.check_backend(backend)
            where = {"path": f"{self.path}/{backend}", "storage": self.store}
        else:
            where = {"path": Path(self.path) / backend}
        # build-time options shape what is stored: recorded in a new collection's
        # manifest, and for an existing one only checked against it (never re-applied)
        build, runtime = spec.split_options(self._indexer_options)
        manifest = None
        if create_with is not None:
            manifest = Manifest(encoder=create_with.identity, indexer=backend,
                                quantization=self._quantization or "none",
                                indexer_options=build,
                                compressor=(open_compressor(self._compress)[0]
                                            if self._compress else None))
        if manifest is not None and self.store is None and not where["path"].exists():
            # a new collection: made whole under another name, then renamed into place.
            # (On object storage there is no rename: Lance's first commit makes the table
            # appear whole, and open_checked below creates it.)
            create_atomically(spec, where["path"], manifest, {**build, **runtime})
        # damaged files or an unknown format: one clear error naming the collection
        indexer = open_checked(spec, self.collection, **where,
                               manifest=manifest,
                               **(runtime if manifest is None else {**build, **runtime}))
        try:
            indexer.manifest.check_quantization(self._quantization, self.collection)
            check_compressor(indexer.manifest.compressor, self._compress, self.collection)
            indexer.manifest.check_indexer_options(build, spec.option_defaults(),
                                                   self.collection)
        except UsageError:
            indexer.close()
            raise
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
        if not self.exists:
            return {}
        staging = staging_for(self.indexer)
        if staging is None:
            return {}
        committed = stored_paths(self.indexer)  # killed after a commit, before its discard
        return {doc_id: len(staging.pages(doc_id)) for doc_id in staging.documents()
                if doc_id not in committed}

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
        indexer = self.indexer
        # search options are checked before the (possibly slow) query encoding
        given = {**(indexer_options or {}), **({} if rerank is None else {"rerank": rerank})}
        options = get_registry().get("indexer", indexer.manifest.indexer).search_options(given)
        takes = inspect.signature(indexer.search).parameters
        missing = sorted(set(options) - set(takes))
        if missing:  # an indexer whose spec declares no options: its signature decides
            raise UsageError(f"the {indexer.manifest.indexer} backend does not take "
                             f"{', '.join(missing)}")
        if mode != "lexical":  # lexical mode needs no encoder (and loads no model)
            ground_options = ground_options.with_(aggregate=ground_options.aggregate or getattr(
                self.encoder, "region_aggregate", "mean"))
        ground_options = grounding_for(ground_options, mode)
        results: list[list[Hit]] = []
        for ranking in rank_pages(indexer, lambda: self.encoder, queries, k, mode, options):
            qv, scored = ranking.query_vector, ranking.pages
            records = indexer.get([s.key for s in scored])
            hits = []
            for rank, (s, record) in enumerate(zip(scored, records), start=1):
                found = ground(qv, record.embedding, record.regions, ground_options,
                               lexical=s.lexical) if regions else []
                paths = list(record.paths or (record.source,))
                hits.append(Hit(rank=rank, score=s.score, doc_id=record.doc_id,
                                # a copy that still exists, if the first path is gone
                                source=existing_first(paths) or record.source,
                                page=record.page_number,
                                page_width=record.width, page_height=record.height,
                                regions=found, paths=paths))
            results.append(hits)
        return results

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
        indexer = self.indexer
        manifest = indexer.manifest
        return {
            "collection": self.collection,
            "path": str(self.path),
            "backend": manifest.indexer,
            "encoder": {"name": manifest.encoder.name, "model_id": manifest.encoder.model_id,
                        "revision": manifest.encoder.revision, "dim": manifest.encoder.dim,
                        "kind": manifest.encoder.kind, "options": manifest.encoder.options},
            "quantization": manifest.quantization,
            "compressor": manifest.compressor,
            "indexer_options": dict(manifest.indexer_options),
            "schema_version": manifest.schema_version,
            "documents": len(indexer.documents()),
            "pages": indexer.count(),
            # vectors stored: what a compressor shrinks (None: the backend cannot say)
            "vectors": (indexer.vector_count() if hasattr(indexer, "vector_count") else None),
        }

    def close(self) -> None:
        if self._indexer is not None:
            self._indexer.close()
            self._indexer = None

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

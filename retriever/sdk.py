"""The Python SDK: ``Retriever`` indexes files into a collection and searches it.

The CLI, the server and the RAG adapters are thin layers over this class; they format what
it returns and add nothing to it.
"""

from __future__ import annotations

__all__ = ["Retriever", "IndexReport", "ProgressCallback", "DEFAULT_MAX_PIXELS"]

import inspect
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import config
from .errors import (
    BadInputError,
    CollectionNotFoundError,
    MissingDependencyError,
    RetrieverError,
    UsageError,
)
from .grounding import Aggregate, ground
from .ingest import content_hash, discover
from .manifest import Manifest
from .pipeline import document_records
from .plugin_host import get_registry
from .protocols import Encoder, Indexer, OCREngine
from .quantization import check_quantization
from .types import FileFailure, Hit

DEFAULT_MAX_PIXELS = 64_000_000

#: progress(stage, done, total, detail); stage is "files" or "pages"
ProgressCallback = Callable[[str, int, int, str], None]


@dataclass
class IndexReport:
    """What one ``index`` run did; ``failed`` lists each bad file with its reason."""

    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # sources whose content changed
    failed: list[FileFailure] = field(default_factory=list)
    pages: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed, "unchanged": self.unchanged, "replaced": self.replaced,
            "failed": [{"path": f.path, "reason": f.reason, "detail": f.detail}
                       for f in self.failed],
            "pages": self.pages,
        }


def _find_backend(path: Path) -> str | None:
    """Collections keep each backend's files in a sub-directory named after it."""
    if not path.is_dir():
        return None
    registry = get_registry()
    for name in registry.names("indexer"):
        if (path / name).is_dir():
            return name
    return None


class Retriever:
    """One collection: open (or create on first ``index``), index files, search.

    ``encoder`` and ``encoder_options`` are needed only for a new collection; an existing
    one rebuilds its encoder from the manifest it stored, and refuses a different one.
    ``quantization`` ("none", "int8", "binary") is how a new collection stores codes for
    two-stage search; an existing one keeps its own and refuses a different one.
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
    ) -> None:
        self.collection = config.validate_collection_name(collection)
        self._quantization = check_quantization(quantization) if quantization else None
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
    def list_collections(data_dir: str | Path | None = None) -> list[str]:
        base = config.data_dir(data_dir) / "collections"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    @staticmethod
    def delete_collection(name: str, data_dir: str | Path | None = None) -> None:
        path = config.collection_path(name, config.data_dir(data_dir))
        if not path.is_dir():
            raise CollectionNotFoundError(f"no collection named {name!r} in {path.parent}")
        shutil.rmtree(path)

    @property
    def exists(self) -> bool:
        return _find_backend(self.path) is not None

    # -- components, created lazily ---------------------------------------------------

    def _open_indexer(self, create_with: Encoder | None) -> Indexer:
        if self._indexer is not None:
            return self._indexer
        registry = get_registry()
        backend = _find_backend(self.path)
        if backend is None and create_with is None:
            raise CollectionNotFoundError(
                f"no collection named {self.collection!r} in {self.root}",
                hint="index some files first: retriever index PATH --collection "
                     f"{self.collection}",
            )
        if backend is not None and self._indexer_name and backend != self._indexer_name:
            raise RetrieverError(
                f"collection {self.collection!r} uses the {backend} backend, "
                f"not {self._indexer_name}")
        backend = backend or self._indexer_name or config.DEFAULT_INDEXER
        manifest = None
        if create_with is not None:
            manifest = Manifest(encoder=create_with.identity, indexer=backend,
                                quantization=self._quantization or "none")
        indexer = registry.create("indexer", backend, path=self.path / backend,
                                  manifest=manifest)
        try:
            indexer.manifest.check_quantization(self._quantization, self.collection)
        except UsageError:
            indexer.close()
            raise
        self._indexer = indexer
        return self._indexer

    @property
    def encoder(self) -> Encoder:
        """The collection's encoder: as stored in its manifest, or as asked for."""
        if self._encoder is None:
            registry = get_registry()
            if self.exists:
                stored = self._open_indexer(None).manifest.encoder
                name = self._encoder_name or stored.name
                # Options given now (device, batch size) add to the stored ones; any that
                # change the vectors are caught by check_compatible below.
                options = self._encoder_options if self._encoder_name else {
                    **stored.options, **self._encoder_options}
                encoder = registry.create("encoder", name, **options)
                self._indexer.manifest.check_compatible(encoder.identity, self.collection)
            else:
                name = self._encoder_name or config.DEFAULT_ENCODER
                encoder = registry.create("encoder", name, **self._encoder_options)
            self._encoder = encoder
        return self._encoder

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

    def index(
        self,
        paths: Sequence[str | Path],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        force: bool = False,
        progress: ProgressCallback | None = None,
    ) -> IndexReport:
        """Index files and directories; unchanged files are skipped, changed ones replaced.

        Each document is written in one commit, so an interrupted run keeps every document
        it finished and none half-written. Bad files are reported, never fatal.
        """
        report = IndexReport()
        files, failures = discover(paths, include=include, exclude=exclude)
        report.failed.extend(failures)
        if not files:
            return report
        from .doctor import require_poppler

        if any(f.suffix.lower() == ".pdf" for f in files):
            require_poppler()
        encoder = self.encoder
        ocr = self._ocr_engine()
        indexer = self._open_indexer(None if self.exists else encoder)  # created on first use
        known = indexer.documents()  # doc_id -> source
        by_source: dict[str, list[str]] = {}
        for doc_id, source in known.items():
            by_source.setdefault(source, []).append(doc_id)

        for done, path in enumerate(files):
            if progress:
                progress("files", done, len(files), str(path))
            source = str(path.resolve())
            try:
                doc_id = content_hash(path)
                if doc_id in known and not force:
                    report.unchanged.append(source)
                    continue
                records = document_records(
                    path, encoder, ocr, max_pixels=self.max_pixels, doc_id=doc_id,
                    source=source,
                    on_page=(lambda page: progress("pages", page.page_number, 0, source))
                    if progress else None,
                )
            except MissingDependencyError:
                raise
            except BadInputError as exc:
                report.failed.append(FileFailure(exc.path, exc.reason, exc.detail))
                continue
            except RetrieverError as exc:
                report.failed.append(FileFailure(source, "error", exc.message))
                continue
            if force and doc_id in known:
                indexer.delete([doc_id])
            indexer.add(records)  # one commit per document
            stale = [d for d in by_source.get(source, []) if d != doc_id]
            if stale:  # deleted after the add: a crash in between keeps the old version
                indexer.delete(stale)
                report.replaced.append(source)
            known[doc_id] = source
            by_source[source] = [doc_id]
            report.indexed.append(source)
            report.pages += len(records)
        if progress:
            progress("files", len(files), len(files), "")
        return report

    def delete(self, sources_or_ids: Sequence[str]) -> int:
        """Remove documents by source path or doc id; returns the pages removed."""
        indexer = self.indexer
        wanted = {str(Path(s).resolve()) for s in sources_or_ids} | set(sources_or_ids)
        doc_ids = [d for d, source in indexer.documents().items()
                   if d in wanted or source in wanted]
        return indexer.delete(doc_ids) if doc_ids else 0

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
    ) -> list[Hit]:
        return self.search_many([query], k, regions=regions, aggregate=aggregate,
                                max_regions=max_regions, rerank=rerank)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int = 5,
        *,
        regions: bool = True,
        aggregate: Aggregate | None = None,
        max_regions: int | None = None,
        rerank: int | None = None,
    ) -> list[list[Hit]]:
        """Top ``k`` pages per query, each with the regions on it that answer.

        ``aggregate`` (mean or max of the vectors in a region) defaults to the encoder's
        ``region_aggregate``, else "mean". ``rerank``: pages a quantized collection scores
        exactly after the codes' shortlist (default: the backend's, per format).
        """
        if k < 1:
            raise RetrieverError(f"k must be at least 1, got {k}")
        indexer = self.indexer
        encoder = self.encoder
        aggregate = aggregate or getattr(encoder, "region_aggregate", "mean")
        query_vectors = encoder.encode_queries(list(queries))
        results: list[list[Hit]] = []
        if rerank is None:
            found = indexer.search(query_vectors, k)
        elif "rerank" in inspect.signature(indexer.search).parameters:
            found = indexer.search(query_vectors, k, rerank=rerank)  # type: ignore[call-arg]
        else:
            raise UsageError(f"the {indexer.manifest.indexer} backend does not take rerank")
        for qv, scored in zip(query_vectors, found):
            records = indexer.get([s.key for s in scored])
            hits = []
            for rank, (s, record) in enumerate(zip(scored, records), start=1):
                found = ground(qv, record.embedding, record.regions, aggregate=aggregate,
                               max_regions=max_regions) if regions else []
                hits.append(Hit(rank=rank, score=s.score, doc_id=record.doc_id,
                                source=record.source, page=record.page_number,
                                page_width=record.width, page_height=record.height,
                                regions=found))
            results.append(hits)
        return results

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
            "schema_version": manifest.schema_version,
            "documents": len(indexer.documents()),
            "pages": indexer.count(),
        }

    def close(self) -> None:
        if self._indexer is not None:
            self._indexer.close()
            self._indexer = None

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""A brute-force in-memory indexer: the test oracle for every other backend.

It is written to be obviously correct, not fast: MaxSim is a plain loop over pages in
float64, independent of ``retriever.search.scoring``. Collections live in a process-wide store
keyed by their resolved path, so opening the same path again in this process sees the
same pages (what "persist and reopen" means for an in-memory backend); nothing reaches
the disk.
"""

from __future__ import annotations

__all__ = ["MemoryIndexer", "create_memory_indexer", "clear_memory_store", "register_indexers"]

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from retriever.errors import (
    CollectionNotFoundError,
    ManifestMismatchError,
    UsageError,
)
from retriever.hookspecs import hookimpl
from retriever.manifest import Manifest
from retriever.records import (
    check_records,
    check_replace,
    missing_documents_error,
    missing_pages_error,
    record_paths,
    with_paths,
)
from retriever.protocols import ScoredPage
from retriever.regions.columns import LazyRegions
from retriever.specs import IndexerSpec
from retriever.types import MultiVector, PageRecord


@dataclass
class _Collection:
    manifest: Manifest
    pages: dict[str, PageRecord] = field(default_factory=dict)  # key -> record, insertion order


_store: dict[str, _Collection] = {}
_store_lock = threading.RLock()


def clear_memory_store() -> None:
    """Forget every in-memory collection of this process (tests)."""
    with _store_lock:
        _store.clear()


def _copy_record(record: PageRecord) -> PageRecord:
    # copy the arrays so a caller reusing its buffers cannot change what is stored
    counts = record.embedding.counts
    emb = MultiVector(record.embedding.vectors.copy(), record.embedding.boxes.copy(),
                      check_norm=False, counts=None if counts is None else counts.copy())
    # regions are immutable once wrapped, so copies share them (flattened once, at add)
    return replace(record, embedding=emb, regions=LazyRegions.of(record.regions),
                   paths=record_paths(record))


class MemoryIndexer:
    """Exact, slow, obviously correct. Same semantics as the LanceDB indexer."""

    def __init__(self, path: Path, manifest: Manifest | None = None) -> None:
        self.path = Path(path)
        self.name = self.path.name or str(self.path)
        key = str(self.path.resolve())
        with _store_lock:
            stored = _store.get(key)
            if stored is None:
                if manifest is None:
                    raise CollectionNotFoundError(
                        f"collection {self.name!r} not found (in-memory, {self.path})",
                        hint="index documents into it first",
                    )
                stored = _Collection(manifest=manifest)
                _store[key] = stored
            elif manifest is not None:
                stored.manifest.check_compatible(manifest.encoder, self.name)
        self._collection = stored
        self.manifest: Manifest = stored.manifest

    # -- writes -------------------------------------------------------------------------

    def add(self, records: Sequence[PageRecord]) -> None:
        """Add or replace (same ``doc_id:page``) pages; all or none of them."""
        self.replace(records)

    def delete(self, doc_ids: Sequence[str]) -> int:
        return self.replace([], delete=doc_ids)

    def replace(self, records: Sequence[PageRecord], *, delete: Sequence[str] = (),
                paths: Mapping[str, Sequence[str]] | None = None) -> int:
        """Delete, add and relink under one lock: all or nothing (see ``Indexer``)."""
        check_records(records, self.manifest, self.name)  # all checked before any is added
        wanted, new_paths = check_replace(records, delete, paths)
        copies = [_copy_record(r) for r in with_paths(records, new_paths)]
        added = {r.doc_id for r in copies}
        with _store_lock:
            pages = self._collection.pages
            stored = {r.doc_id for r in pages.values()}
            missing = [d for d in new_paths if d not in added and d not in stored]
            if missing:
                raise missing_documents_error(self.name, missing)
            gone = [k for k, r in pages.items() if r.doc_id in set(wanted)]
            for k in gone:
                del pages[k]
            for rec in copies:
                pages[rec.key] = rec
            for key, rec in pages.items():
                if rec.doc_id in new_paths and rec.doc_id not in added:
                    doc_paths = new_paths[rec.doc_id]
                    pages[key] = replace(rec, source=doc_paths[0], paths=doc_paths)
        return sum(k not in pages for k in gone)

    # -- reads --------------------------------------------------------------------------

    def _snapshot(self) -> list[PageRecord]:
        with _store_lock:
            return list(self._collection.pages.values())

    def search(self, queries: Sequence[MultiVector], k: int) -> list[list[ScoredPage]]:
        pages = self._snapshot()
        results: list[list[ScoredPage]] = []
        for query in queries:
            if query.dim != self.manifest.encoder.dim:
                raise ManifestMismatchError(
                    f"query has dim {query.dim}, collection {self.name!r} stores dim "
                    f"{self.manifest.encoder.dim}"
                )
            q = query.vectors.astype(np.float64)  # (q, d)
            scored: list[tuple[float, str]] = []
            for page in pages:
                v = page.embedding.vectors.astype(np.float64)  # (n, d)
                if v.shape[0] == 0:
                    continue  # nothing on the page can match
                sims = q @ v.T  # (q, n)
                scored.append((float(sims.max(axis=1).sum()), page.key))
            scored.sort(key=lambda item: (-item[0], item[1]))
            results.append([ScoredPage(key, score) for score, key in scored[: max(k, 0)]])
        return results

    def get(self, keys: Sequence[str]) -> list[PageRecord]:
        with _store_lock:
            pages = self._collection.pages
            missing = [k for k in keys if k not in pages]
            if missing:
                raise missing_pages_error(self.name, missing)
            return [_copy_record(pages[k]) for k in keys]

    def documents(self) -> dict[str, str]:
        return {r.doc_id: r.source for r in self._snapshot()}

    def paths(self) -> dict[str, list[str]]:
        return {r.doc_id: list(r.paths) for r in self._snapshot()}

    def count(self) -> int:
        with _store_lock:
            return len(self._collection.pages)

    def vector_count(self) -> int:
        with _store_lock:
            return sum(r.embedding.n for r in self._collection.pages.values())

    def close(self) -> None:
        """Nothing to release: the pages stay in the process-wide store."""

    def __repr__(self) -> str:
        return f"MemoryIndexer({str(self.path)!r}, pages={self.count()})"


def create_memory_indexer(
    path: Path | str, manifest: Manifest | None = None, **options: Any
) -> MemoryIndexer:
    """``IndexerSpec`` factory: open the collection at ``path`` or create it."""
    if options:
        raise UsageError(f"the memory indexer takes no options, got {sorted(options)}")
    return MemoryIndexer(Path(path), manifest)


@hookimpl
def register_indexers(register: Any) -> None:
    register(
        IndexerSpec(
            name="memory",
            factory=create_memory_indexer,
            description="in-memory brute-force MaxSim (exact; test oracle, nothing persisted)",
            options=(),  # exact and not persisted: nothing to tune
        )
    )

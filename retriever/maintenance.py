"""Storage upkeep of a collection: what it holds on disk, and optimizing it.

Every commit adds a version (LanceDB) or a generation (FAISS) and a small fragment or
segment; many small ones make scans slower and old versions hold disk. ``optimize``
merges them, brings derived indexes up to date and removes old versions, through the
backend's ``MaintainableIndexer`` methods, without changing a page or a search result.

Retention (``keep``, default 10 minutes): a version is removed only once it was
superseded more than ``keep`` ago. Readers always start on the newest version, so a
search still reading an older one began before it was superseded; ``keep`` is how long
such a search may take. (FAISS readers retry from ``CURRENT`` when a file goes, so FAISS
removes old generations at every commit already and ignores ``keep``.)

When an ``index`` run optimizes by itself (``auto_optimize``, the one rule): when the run
committed something and the collection then holds at least ``AUTO_MIN_FRAGMENTS``
fragments, and the pages outside its largest fragment (about: those written since the
last optimize) are at least ``AUTO_GROWTH`` of the pages inside it. Why both: the count
bounds the small files a scan opens, and the growth share keeps the total cost linear,
because a LanceDB compaction rewrites the whole table (every fragment under a million
rows), so compacting after every N commits would cost quadratic time on a growing
collection. FAISS keeps at most 12 segments by itself (``indexers/faiss/store.py``), so
the rule does not fire there; ``retriever collections optimize`` still merges them into
one and rebuilds the FAISS index.
"""

from __future__ import annotations

__all__ = [
    "AUTO_GROWTH",
    "AUTO_MIN_FRAGMENTS",
    "DEFAULT_KEEP",
    "OptimizeReport",
    "StorageStats",
    "auto_optimize",
    "collection_storage",
    "disk_bytes",
    "optimize_collection",
    "should_optimize",
]

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .locking import writer_lock
from .protocols import MaintainableIndexer

if TYPE_CHECKING:
    from .indexing import IndexReport
    from .sdk import Retriever

log = logging.getLogger(__name__)

DEFAULT_KEEP = timedelta(minutes=10)
AUTO_MIN_FRAGMENTS = 32
AUTO_GROWTH = 0.25


@dataclass(frozen=True)
class StorageStats:
    """A collection's storage as it is now; the same fields for every backend.

    ``version``: the LanceDB table version or FAISS generation number; ``versions``: how
    many versions (generation files) are kept on disk; ``fragments``: LanceDB fragments or
    FAISS segments; ``unmerged_pages``: pages outside the largest fragment (about: written
    since the last optimize); ``bytes``: every file of the backend's directory.
    """

    backend: str
    version: int
    versions: int
    fragments: int
    pages: int
    unmerged_pages: int
    bytes: int
    details: dict[str, Any] = field(default_factory=dict)  # backend-specific

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OptimizeReport:
    """What ``optimize`` did: storage before and after, and the versions it removed."""

    backend: str
    before: StorageStats
    after: StorageStats
    versions_removed: int
    keep_seconds: float
    seconds: float
    collection: str = ""

    def to_dict(self) -> dict[str, Any]:
        b, a = self.before, self.after
        return {
            "collection": self.collection, "backend": self.backend,
            "versions_removed": self.versions_removed,
            "versions_before": b.versions, "versions_after": a.versions,
            "version_before": b.version, "version_after": a.version,
            "fragments_before": b.fragments, "fragments_after": a.fragments,
            "bytes_before": b.bytes, "bytes_after": a.bytes,
            "pages": a.pages, "keep_seconds": self.keep_seconds,
            "seconds": round(self.seconds, 3),
        }


def disk_bytes(path: Path) -> int:
    """Bytes of every file under ``path`` (files vanishing meanwhile count as 0)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # removed by a writer's cleanup while we walked
    return total


def should_optimize(stats: StorageStats) -> bool:
    """The auto-optimize rule (module docstring): enough fragments, and enough growth."""
    merged = stats.pages - stats.unmerged_pages
    return (stats.fragments >= AUTO_MIN_FRAGMENTS
            and stats.unmerged_pages >= AUTO_GROWTH * merged)


def _committed(report: IndexReport) -> bool:
    return bool(report.indexed or report.replaced or report.moved or report.copied
                or report.removed)


def auto_optimize(indexer: object | None, report: IndexReport, collection: str,
                  keep: timedelta = DEFAULT_KEEP) -> OptimizeReport | None:
    """At the end of an ``index`` run (under its writer lock): optimize when the rule says
    so. Never fails the run: its documents are committed already, so a failure here is a
    warning and the next run (or ``retriever collections optimize``) tries again."""
    if indexer is None or not _committed(report) or not isinstance(indexer, MaintainableIndexer):
        return None
    try:
        if not should_optimize(indexer.storage_stats()):
            return None
        return replace(indexer.optimize(keep), collection=collection)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("collection %r: optimizing after indexing failed (%s); run `retriever "
                    "collections optimize %s` later", collection, exc, collection)
        return None


def _maintainable(retriever: Retriever) -> MaintainableIndexer:
    indexer = retriever.indexer  # CollectionNotFoundError, or a damaged collection's error
    if not isinstance(indexer, MaintainableIndexer):
        raise UsageError(f"the {indexer.manifest.indexer} backend of collection "
                         f"{retriever.collection!r} has no storage maintenance")
    return indexer


def collection_storage(retriever: Retriever) -> StorageStats | None:
    """The collection's storage now; None for a backend that does not report it."""
    indexer = retriever.indexer
    return indexer.storage_stats() if isinstance(indexer, MaintainableIndexer) else None


def optimize_collection(retriever: Retriever, keep: timedelta = DEFAULT_KEEP) -> OptimizeReport:
    """Optimize the collection under its writer lock (busy: ``CollectionBusyError``)."""
    if keep < timedelta(0):
        raise UsageError(f"keep must not be negative, got {keep}")
    with writer_lock(retriever.root, retriever.collection, "optimize"):
        report = _maintainable(retriever).optimize(keep)
    return replace(report, collection=retriever.collection)

"""Storage upkeep of a LanceDB collection: stats, optimize, verify, the check on open.

A mixin of ``LanceDBIndexer`` (``MaintainableIndexer``), kept apart so the indexer stays
about its reads and writes. Everything goes through LanceDB's own API: ``table.stats()``,
``table.list_versions()`` and ``table.optimize()`` (compaction, removal of old versions
and the update of the full-text index in one call).

Why optimize runs in passes: its one call compacts, then removes versions, then updates
indexes, and Lance does not merge fragments the full-text index covers with ones it does
not. So the first passes compact and update the index while removing nothing; once the
fragments stop shrinking, a last pass removes old versions with nothing left to compact,
so the retention it is given is measured from (almost) the moment it runs.
"""

from __future__ import annotations

__all__ = ["LanceMaintenance", "retention"]

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from retriever.errors import RetrieverError
from retriever.integrity import PageChecker, VerifyReport, short
from retriever.maintenance import OptimizeReport, StorageStats, disk_bytes

from . import arrow as arrow_io
from . import fulltext

if TYPE_CHECKING:
    from .indexer import LanceDBIndexer

_COMPACT_PASSES = 3
#: versions this close before the oldest older version kept are kept too: the clock Lance
#: reads when it removes versions runs a little after ours
_CLOCK_MARGIN_S = 1.0
_VERIFY_BATCH = 256  # pages per batch read by verify
_PRUNE_NOTHING = timedelta(days=1)  # beyond the oldest version: removes none of them


def retention(versions: Sequence[dict[str, Any]], keep: timedelta, now: float) -> timedelta:
    """The ``cleanup_older_than`` that removes exactly the versions superseded more than
    ``keep`` before ``now`` (epoch seconds), keeping the latest.

    Lance removes versions *created* before its cutoff; a version created long ago may
    have been the latest a moment ago, with a search still reading it. So the cutoff is
    the creation time of the oldest version still in use: the latest, or one whose
    successor came less than ``keep`` ago.
    """
    ordered = sorted(versions, key=lambda v: int(v["version"]))
    stamps = [v["timestamp"].timestamp() for v in ordered]  # naive local time, as Lance gives
    first = next(i for i in range(len(ordered))
                 if i == len(ordered) - 1 or stamps[i + 1] > now - keep.total_seconds())
    cutoff = min(stamps[first:])  # clocks may step back: never cut into a kept version
    # the latest version is never removed, so only an older one kept needs the margin
    margin = 0.0 if first == len(ordered) - 1 else _CLOCK_MARGIN_S
    # at least a millisecond: Lance reads 0 ms as "remove all but the latest" and warns
    return timedelta(seconds=max(now - cutoff + margin, 0.001))


def _fragments(table: Any) -> int:
    return int(table.stats()["fragment_stats"]["num_fragments"])


class LanceMaintenance:
    """``storage_stats``, ``optimize``, ``verify`` and ``check_readable`` of one table."""

    def storage_stats(self: LanceDBIndexer) -> StorageStats:
        table = self._table
        stats, versions = table.stats(), table.list_versions()
        frags = stats["fragment_stats"]
        rows, largest = int(stats["num_rows"]), int(frags["lengths"]["max"])
        indices = [{"name": i.name, "type": str(i.index_type),
                    "unindexed_rows": int(i.num_unindexed_rows or 0)}
                   for i in table.list_indices()]
        return StorageStats(
            backend="lancedb", version=int(table.version), versions=len(versions),
            fragments=int(frags["num_fragments"]), pages=rows,
            unmerged_pages=max(rows - largest, 0) if frags["num_fragments"] else 0,
            # on object storage: every object under the table's URI (one listing)
            bytes=(self.storage.size(self.uri) if self.storage is not None and self.uri
                   else disk_bytes(self.path)),
            details={"small_fragments": int(frags["num_small_fragments"]),
                     "table_bytes": int(stats["total_bytes"]), "indices": indices,
                     "dtype": self.dtype, "quantization": self.quantization})

    def optimize(self: LanceDBIndexer, keep: timedelta) -> OptimizeReport:
        """Compact, update the full-text index, remove versions superseded over ``keep``
        ago. The caller holds the collection's writer lock (no commit runs meanwhile)."""
        started = time.monotonic()
        table = self._table
        before = self.storage_stats()
        old = {int(v["version"]) for v in table.list_versions()}
        try:
            for _ in range(_COMPACT_PASSES):
                fragments = _fragments(table)
                oldest = min(v["timestamp"].timestamp() for v in table.list_versions())
                table.optimize(cleanup_older_than=timedelta(
                    seconds=time.time() - oldest) + _PRUNE_NOTHING)
                now_fragments = _fragments(table)
                if now_fragments <= 1 or now_fragments >= fragments:
                    break
            table.optimize(cleanup_older_than=retention(table.list_versions(), keep,
                                                        time.time()))
            self._fulltext.refresh(table)  # built if missing; rebuilt if still stale
        except Exception as exc:
            raise RetrieverError(f"optimizing collection {self.name!r} failed: {short(exc)}",
                                 hint="every committed page is kept (each step is its own "
                                      "commit); retry later") from exc
        after = self.storage_stats()
        removed = len(old - {int(v["version"]) for v in table.list_versions()})
        return OptimizeReport("lancedb", before, after, removed, keep.total_seconds(),
                              time.monotonic() - started)

    def check_readable(self: LanceDBIndexer) -> None:
        """Read the key column of every fragment: a missing or truncated data file fails
        here, on open, instead of in the middle of a search."""
        self._table.search().select(["key"]).limit(None).to_arrow()

    def verify(self: LanceDBIndexer) -> VerifyReport:
        # one version throughout: a writer committing meanwhile must not look like damage
        table = self._db.open_table(self._table.name)
        table.checkout(int(table.version))
        dim, kind = self.manifest.encoder.dim, self.manifest.encoder.kind
        checker = PageChecker("lancedb", dim, kind)
        schema = table.schema
        try:
            stored = arrow_io.manifest_from_schema(schema, self.name)
            if stored.encoder.dim != schema.field("vectors").type.value_type.list_size:
                checker.problem("manifest: its dimension differs from the vectors column")
        except RetrieverError as exc:
            checker.problem(f"manifest: {exc.message}")
        terms = fulltext.has_terms(schema)
        columns = ["key", "doc_id", "page_number", "n_vectors", "vectors", "boxes", "regions"]
        try:
            reader = (table.search().select(columns + (["terms"] if terms else []))
                      .limit(None).to_batches(_VERIFY_BATCH))
            for batch in reader:
                _check_batch(checker, batch, terms)
            count: int | None = int(table.count_rows())
        except Exception as exc:  # noqa: BLE001 - an unreadable table is the finding
            checker.problem(f"the pages table cannot be read: {short(exc)}")
            count = None
        return checker.finish(count)


def _check_batch(checker: PageChecker, batch: Any, terms: bool) -> None:
    vectors, offsets = arrow_io.nested_vectors_to_numpy(batch.column("vectors"))
    boxes, box_offsets = arrow_io.nested_vectors_to_numpy(batch.column("boxes"))
    cols = {n: batch.column(n).to_pylist()
            for n in ("key", "doc_id", "page_number", "n_vectors", "regions")}
    row_terms = batch.column("terms").to_pylist() if terms else None
    for i in range(batch.num_rows):
        key = cols["key"][i]
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        blo, bhi = int(box_offsets[i]), int(box_offsets[i + 1])
        if bhi - blo != hi - lo:
            checker.problem(f"page {key}: {bhi - blo} boxes for {hi - lo} vectors")
        checker.page(key, cols["doc_id"][i], int(cols["page_number"][i]), vectors[lo:hi],
                     boxes[blo:bhi] if bhi - blo == hi - lo else None, cols["regions"][i],
                     n_vectors=int(cols["n_vectors"][i]),
                     terms=None if row_terms is None or row_terms[i] is None else row_terms[i])

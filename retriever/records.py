"""Checks every index backend runs on page records before it writes anything."""

from __future__ import annotations

__all__ = ["check_records", "missing_pages_error"]

from collections.abc import Sequence

from .errors import ManifestMismatchError, RetrieverError, UsageError
from .manifest import Manifest
from .types import PageRecord


def check_records(
    records: Sequence[PageRecord], manifest: Manifest, collection: str,
    *, max_vectors_per_page: int | None = None,
) -> None:
    """Raise before a write if any record does not fit the collection, so none is added.

    Checks the vector dimension against the manifest, 1-based page numbers, at most one
    vector per page in a single-vector collection, a backend's per-page vector limit, and
    that no page key appears twice in one call.
    """
    dim, single = manifest.encoder.dim, manifest.encoder.kind == "single"
    seen: set[str] = set()
    for rec in records:
        if rec.embedding.dim != dim:
            raise ManifestMismatchError(
                f"page {rec.key}: vectors have dim {rec.embedding.dim}, collection "
                f"{collection!r} stores dim {dim}",
                hint="index with the encoder the collection was built with")
        if rec.page_number < 1:
            raise UsageError(f"page {rec.key}: page numbers are 1-based")
        if single and rec.embedding.n > 1:
            raise UsageError(f"page {rec.key}: {rec.embedding.n} vectors in a "
                             f"single-vector collection (one per page at most)")
        if max_vectors_per_page is not None and rec.embedding.n > max_vectors_per_page:
            raise UsageError(f"page {rec.key}: more than {max_vectors_per_page} vectors on "
                             "one page")
        if rec.key in seen:
            raise UsageError(f"page {rec.key} appears twice in one add")
        seen.add(rec.key)


def missing_pages_error(collection: str, missing: Sequence[str]) -> RetrieverError:
    """The error ``Indexer.get`` raises for page keys the collection does not hold."""
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return RetrieverError(f"collection {collection!r} has no page {missing[0]!r}{more}",
                          hint="the document may have been deleted; search again")

"""Checks every index backend runs on page records before it writes anything, and on
queries before it searches."""

from __future__ import annotations

__all__ = ["check_records", "check_queries", "check_replace", "missing_pages_error",
           "missing_documents_error", "record_paths", "with_paths"]

from collections.abc import Mapping, Sequence
from dataclasses import replace

from .errors import ManifestMismatchError, RetrieverError, UsageError
from .manifest import Manifest
from .types import MultiVector, PageRecord


def check_queries(queries: Sequence[MultiVector], manifest: Manifest, collection: str) -> None:
    """Raise before a search if a query's dimension is not the collection's: it was
    encoded by another model than the one that built the collection."""
    dim = manifest.encoder.dim
    for q in queries:
        if q.dim != dim:
            raise ManifestMismatchError(
                f"query has dim {q.dim}, collection {collection!r} stores dim {dim}",
                hint=f"search with encoder {manifest.encoder.name}")


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


def check_replace(
    records: Sequence[PageRecord], delete: Sequence[str],
    paths: Mapping[str, Sequence[str]] | None, staged: Sequence[str] = (),
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Check the arguments of ``Indexer.replace``; -> (delete, paths) deduplicated.

    ``paths`` may name the documents of ``records`` or ``staged`` (documents whose pages
    come from the staging area) and stored documents that stay; a document that is deleted
    and not re-added has no paths to set.
    """
    delete = list(dict.fromkeys(delete))
    added = {r.doc_id for r in records} | set(staged)
    out: dict[str, tuple[str, ...]] = {}
    for doc_id, doc_paths in (paths or {}).items():
        clean = tuple(dict.fromkeys(doc_paths))
        if not clean or not all(isinstance(p, str) and p for p in clean):
            raise UsageError(f"document {doc_id}: no paths given (each needs at least one)")
        if doc_id in delete and doc_id not in added:
            raise UsageError(f"document {doc_id} is deleted, so it has no paths to set")
        out[doc_id] = clean
    return delete, out


def record_paths(record: PageRecord) -> tuple[str, ...]:
    """Every path of ``record``'s document, the source first (``paths`` or its source)."""
    return record.paths or (record.source,)


def with_paths(records: Sequence[PageRecord], paths: Mapping[str, Sequence[str]],
               ) -> list[PageRecord]:
    """``records`` with the paths ``Indexer.replace`` was given for their documents."""
    out = []
    for rec in records:
        given = paths.get(rec.doc_id)
        out.append(replace(rec, source=given[0], paths=tuple(given)) if given else rec)
    return out


def missing_documents_error(collection: str, missing: Sequence[str]) -> RetrieverError:
    """The error ``Indexer.replace`` raises for paths of documents it does not hold."""
    return RetrieverError(f"collection {collection!r} has no document {missing[0]!r}",
                          hint="it may have been deleted by another process; index again")

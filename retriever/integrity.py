"""Is a collection whole? The page checks of ``verify``, and damage found on open.

``verify`` reads every page once: each key ``doc_id:page`` exactly once, the pages of a
document numbered 1..n without gaps, vectors readable, finite and of the manifest's
dimension, one valid box per vector, regions that parse; plus whatever the backend knows
about its own files. Backends feed their pages to a ``PageChecker``, so both check the
same things with the same words.

On open (``open_checked``), a collection whose files are missing, garbled or of a format
this version does not know raises ``CollectionCorruptError``, naming the collection and
how to rebuild it, instead of a backend's traceback.
"""

from __future__ import annotations

__all__ = ["MAX_PROBLEMS", "VerifyReport", "PageChecker", "corrupt_error", "create_atomically",
           "open_checked", "verify_collection"]

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import CollectionCorruptError, CollectionNotFoundError, RetrieverError
from .fileio import fsync_dir
from .protocols import MaintainableIndexer

if TYPE_CHECKING:
    from pathlib import Path

    from .manifest import Manifest
    from .protocols import Indexer
    from .sdk import Retriever
    from .specs import IndexerSpec

#: problems listed at most; the rest are counted (a wrecked collection has one per page)
MAX_PROBLEMS = 200
#: Lance appends the Rust source location of an error; people need the first part only
_RUST_TAIL = re.compile(r",?\s*/\S+\.rs:\d+:\d+.*$", re.S)


@dataclass
class VerifyReport:
    """What ``verify`` found: ``problems`` empty means the collection is whole."""

    backend: str
    pages: int = 0
    documents: int = 0
    problems: list[str] = field(default_factory=list)
    more_problems: int = 0  # problems beyond MAX_PROBLEMS, counted only
    collection: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "backend": self.backend, "ok": self.ok,
                "pages": self.pages, "documents": self.documents,
                "problems": self.problems, "more_problems": self.more_problems}


def short(exc: BaseException) -> str:
    """An exception as one readable line (Lance's Rust locations cut off)."""
    text = _RUST_TAIL.sub("", str(exc)).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


class PageChecker:
    """Collects the problems of the pages it is shown, then of their documents."""

    def __init__(self, backend: str, dim: int, kind: str) -> None:
        self.report = VerifyReport(backend)
        self.dim, self.single = dim, kind == "single"
        self._pages: dict[str, set[int]] = {}  # doc_id -> page numbers seen
        self._keys: set[str] = set()

    def problem(self, text: str) -> None:
        if len(self.report.problems) < MAX_PROBLEMS:
            self.report.problems.append(text)
        else:
            self.report.more_problems += 1

    def page(self, key: str, doc_id: str, page_number: int, vectors: np.ndarray,
             boxes: np.ndarray | None, regions: Any, *, n_vectors: int | None = None,
             terms: Sequence[str] | None = None) -> None:
        """Check one stored page; ``regions`` is its stored form (``LazyRegions`` input);
        ``boxes`` None: the caller found them unusable and said so already."""
        from .regions.columns import LazyRegions

        self.report.pages += 1
        if key in self._keys:
            self.problem(f"page {key}: stored more than once")
        self._keys.add(key)
        if key != f"{doc_id}:{page_number}":
            self.problem(f"page {key}: its key does not match doc_id {doc_id!r} and "
                         f"page {page_number}")
        if page_number < 1:
            self.problem(f"page {key}: page number {page_number} (pages are 1-based)")
        self._pages.setdefault(doc_id, set()).add(page_number)
        self._vectors(key, vectors, boxes, n_vectors)
        try:
            parsed = list(regions if isinstance(regions, LazyRegions) else LazyRegions(regions))
        except Exception as exc:  # noqa: BLE001 - any parse failure is the finding
            self.problem(f"page {key}: regions unreadable ({short(exc)})")
            return
        if terms is not None and len(terms) != len(parsed):
            self.problem(f"page {key}: full-text terms for {len(terms)} regions, the page "
                         f"has {len(parsed)}")

    def _vectors(self, key: str, vectors: np.ndarray, boxes: np.ndarray | None,
                 n_vectors: int | None) -> None:
        from .types import MultiVector

        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            self.problem(f"page {key}: vectors of shape {tuple(vectors.shape)}, the manifest "
                         f"says dim {self.dim}")
            return
        if n_vectors is not None and n_vectors != vectors.shape[0]:
            self.problem(f"page {key}: {vectors.shape[0]} vectors stored, {n_vectors} recorded")
        if self.single and vectors.shape[0] > 1:
            self.problem(f"page {key}: {vectors.shape[0]} vectors in a single-vector collection")
        if boxes is None:  # reported already; still check the vectors
            boxes = np.zeros((vectors.shape[0], 4), np.float32)
        try:  # the project's own rules for finite vectors and normalized, ordered boxes
            MultiVector(vectors, boxes, check_norm=False)
        except RetrieverError as exc:
            self.problem(f"page {key}: {exc.message.removeprefix('MultiVector: ')}")

    def finish(self, stored_pages: int | None = None) -> VerifyReport:
        """Document-level checks; ``stored_pages``: the count the backend reports."""
        for doc_id, numbers in sorted(self._pages.items()):
            want = set(range(1, max(numbers) + 1))
            if numbers != want:
                gaps = sorted(want - numbers)
                shown = ", ".join(map(str, gaps[:10])) + (" ..." if len(gaps) > 10 else "")
                self.problem(f"document {doc_id}: pages 1..{max(numbers)} not contiguous "
                             f"(missing {shown})")
        if stored_pages is not None and stored_pages != self.report.pages:
            self.problem(f"{self.report.pages} pages read, the collection counts {stored_pages}")
        self.report.documents = len(self._pages)
        return self.report


def corrupt_error(collection: str, exc: BaseException | str) -> CollectionCorruptError:
    """The one error for a collection that cannot be read, with how to rebuild it."""
    detail = (exc if isinstance(exc, str) else exc.message if isinstance(exc, RetrieverError)
              else short(exc))
    return CollectionCorruptError(
        f"collection {collection!r} cannot be read: {detail}",
        hint=f"it is damaged, or was written by another version of vision-retriever "
             f"(then use that version, or upgrade). To rebuild it: retriever collections "
             f"delete {collection}, then index its files again; retriever collections "
             f"verify {collection} lists what is wrong")


def _converts(exc: Exception) -> bool:
    """Errors that mean damage when an existing collection opens: a backend's plain
    RetrieverError (unreadable manifest, unknown format), "not found" although its
    directory is there, and anything not ours (Lance, OS, JSON). Usage, mismatch and
    missing-dependency errors keep their own message and exit code."""
    return type(exc) in (RetrieverError, CollectionNotFoundError) or not isinstance(
        exc, RetrieverError)


def create_atomically(spec: IndexerSpec, final: Path, manifest: Manifest,
                       options: dict[str, Any]) -> None:
    """Create a backend's collection under a temporary name, then rename it to ``final``.

    Why: a run killed halfway through creating a collection would otherwise leave a
    backend directory without a table or manifest, which every later run takes for a
    damaged collection. A rename is atomic: the collection is there whole, or not at all.
    Leftovers of a killed creation are removed first (the caller holds the writer lock).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    for debris in final.parent.glob(f".{final.name}.new-*"):
        shutil.rmtree(debris, ignore_errors=True)
    tmp = final.parent / f".{final.name}.new-{os.getpid()}"
    spec.create(path=tmp, manifest=manifest, **options).close()
    if not tmp.exists():  # a backend that keeps nothing on disk (memory)
        return
    os.rename(tmp, final)
    fsync_dir(final.parent)


def open_checked(spec: IndexerSpec, collection: str, **kwargs: Any) -> Indexer:
    """``spec.create(**kwargs)``; opening an existing collection (no ``manifest``) also
    runs the backend's cheap ``check_readable``, and damage becomes ``corrupt_error``."""
    existing = kwargs.get("manifest") is None
    try:
        indexer = spec.create(**kwargs)
    except Exception as exc:
        if existing and type(exc) is CollectionNotFoundError:  # its directory is there
            raise corrupt_error(collection, f"no readable {spec.name} collection in "
                                            f"{kwargs.get('path')}") from exc
        if existing and _converts(exc):
            raise corrupt_error(collection, exc) from exc
        raise
    if existing and isinstance(indexer, MaintainableIndexer):
        try:
            indexer.check_readable()
        except Exception as exc:
            indexer.close()
            if _converts(exc):
                raise corrupt_error(collection, exc) from exc
            raise
    return indexer


def verify_collection(retriever: Retriever) -> VerifyReport:
    """Check every page of the collection (no lock: it only reads). A collection that
    does not even open is one problem: the reason."""
    try:
        indexer = retriever.indexer
    except CollectionCorruptError as exc:
        # the backend directory is there; it does not open
        return VerifyReport(backend=retriever._backend() or "?",
                            problems=[exc.message], collection=retriever.collection)
    if not isinstance(indexer, MaintainableIndexer):
        from .errors import UsageError

        raise UsageError(f"the {indexer.manifest.indexer} backend of collection "
                         f"{retriever.collection!r} cannot be verified")
    return replace(indexer.verify(), collection=retriever.collection)

"""Which documents a collection holds at which paths, and what indexing a file changes.

A document is identified by the hash of its content and recorded at every path it was
found at. ``Book`` keeps doc_id -> paths and path -> doc_id in step with each commit, with
one invariant: a path belongs to at most one document. ``plan_file`` decides from it
what indexing one file means (encode it or not, which documents its commit deletes,
which paths it records); a local run (``indexing.py``) and a distributed one
(``distributed/ray_index.py``) both follow its plans.
"""

from __future__ import annotations

__all__ = ["Book", "FilePlan", "commit", "file_exists", "plan_file", "stored_paths"]

import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .protocols import Indexer
from .staging import StagedDocument
from .types import PageRecord


def stored_paths(indexer: Indexer) -> dict[str, list[str]]:
    """doc_id -> paths; one path each from an indexer written before ``paths()``."""
    paths = getattr(indexer, "paths", None)
    if paths is not None:
        return paths()
    return {d: [s] for d, s in indexer.documents().items()}


def commit(indexer: Indexer, records: Sequence[PageRecord], delete: Sequence[str],
            paths: Mapping[str, Sequence[str]], staged: Sequence[StagedDocument] = ()) -> int:
    replace = getattr(indexer, "replace", None)
    if staged and (replace is None or "staged" not in inspect.signature(replace).parameters):
        # an indexer that cannot read staged pages itself gets them in memory
        records = [*records, *(r for doc in staged for batch in doc.batches() for r in batch)]
        staged = ()
    if replace is not None:
        return replace(records, delete=delete, paths=paths, **({"staged": staged} if staged
                                                               else {}))
    # an indexer written before replace(): two commits, the new version first (a crash in
    # between keeps both, never neither), and one path per document
    added = {r.doc_id for r in records}
    removed = indexer.delete([d for d in delete if d in added]) if added & set(delete) else 0
    if records:
        indexer.add(records)
    rest = [d for d in delete if d not in added]
    return removed + (indexer.delete(rest) if rest else 0)


class Book:
    """doc_id -> paths and path -> doc_id, kept in step with each commit."""

    def __init__(self, paths: Mapping[str, Sequence[str]]) -> None:
        self.paths: dict[str, list[str]] = {}
        self.owner: dict[str, str] = {}
        for doc_id, doc_paths in paths.items():
            self.set(doc_id, doc_paths)

    def set(self, doc_id: str, paths: Sequence[str]) -> None:
        for p in self.paths.pop(doc_id, []):
            if self.owner.get(p) == doc_id:
                del self.owner[p]
        if paths:
            self.paths[doc_id] = list(paths)
            self.owner.update((p, doc_id) for p in paths)

    def commit(self, indexer: Indexer, records: Sequence[PageRecord], delete: Sequence[str],
               paths: Mapping[str, Sequence[str]],
               staged: Sequence[StagedDocument] = ()) -> int:
        removed = commit(indexer, records, delete, paths, staged)
        for doc_id in delete:
            self.set(doc_id, [])
        for doc_id, doc_paths in paths.items():
            self.set(doc_id, doc_paths)
        return removed


def file_exists(path: str) -> bool:
    return os.path.isfile(path)


@dataclass
class FilePlan:
    """What indexing one file means for the collection, decided from the bookkeeping alone
    (``plan_file``): whether its content must be encoded, the documents its commit deletes
    and the paths it records; the same for a local run and a distributed one."""

    doc_id: str
    source: str
    outcome: str  # "unchanged", "indexed", "moved" or "copied": the report's list
    encode: bool = False
    delete: list[str] = field(default_factory=list)
    paths: dict[str, list[str]] = field(default_factory=dict)
    replaced: bool = False  # another content was recorded at this path before


def plan_file(book: Book, doc_id: str, source: str, *, force: bool) -> FilePlan:
    """The plan for the file at ``source`` whose content hashes to ``doc_id``."""
    known = book.paths.get(doc_id)
    if known is not None and source in known and not force:
        return FilePlan(doc_id, source, "unchanged")
    plan = FilePlan(doc_id, source, "indexed")
    previous = book.owner.get(source)  # another document recorded here: the file changed
    if previous is not None and previous != doc_id:
        plan.replaced = True
        rest = [p for p in book.paths[previous] if p != source]
        if rest:  # the old content lives on under its other paths
            plan.paths[previous] = rest
        else:
            plan.delete.append(previous)
    if known is not None and not force:  # stored under other paths: no encoding
        kept = [p for p in known if file_exists(p)]
        plan.paths[doc_id] = [*kept, source]
        plan.outcome = "moved" if len(kept) < len(known) else "copied"
        return plan
    plan.encode = True
    if known is not None:  # --force: this version replaces the stored one whole
        plan.delete.append(doc_id)
        plan.paths[doc_id] = [source, *(p for p in known if p != source and file_exists(p))]
    else:
        plan.paths[doc_id] = [source]
    return plan

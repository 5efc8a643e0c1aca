"""The coordinator's account of a distributed indexing job: which fragments may commit.

Workers write fragments as they encode (``ingest_stages.PageEncoder``), and one fragment
can hold pages of several documents, while a document's pages can be spread over several
fragments. A document may enter the collection only whole, so the fragments are committed
in groups: a group is a connected set of documents and the fragments that hold their
pages, and it is ready once every document in it has each of its pages exactly once.
A group holding a document that failed (or that a retried worker wrote twice) cannot be
committed: its other documents are encoded again in another round (``unfinished``).
Failures found before any page was written (opening the file) cost nothing more.

Plain Python, no Ray: the tests drive it with hand-made tokens.
"""

from __future__ import annotations

__all__ = ["CommitGroup", "Ledger"]

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..types import FileFailure


@dataclass
class CommitGroup:
    """Documents that commit together, the fragments holding their pages, and each
    document's page count."""

    docs: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    pages: dict[str, int] = field(default_factory=dict)

    @property
    def page_count(self) -> int:
        return sum(self.pages.values())


@dataclass
class _Unit:
    """What one encoder call wrote: its fragments and the page numbers per document."""

    fragments: list[str]
    pages: dict[str, list[int]]


class Ledger:
    """Tokens in (``add``), groups ready to commit out (``ready``).

    ``no_text``: for an encoder that reads text only, the failure of a document none of
    whose pages has a region (``ingest_stages.no_text_failure``); None otherwise.
    """

    def __init__(self, docs: Iterable[str],
                 no_text: Callable[[str], FileFailure] | None = None) -> None:
        self.docs = list(dict.fromkeys(docs))
        self.expected: dict[str, int] = {}
        self.failed: dict[str, FileFailure] = {}
        self.fatal: tuple[str, str] | None = None  # (message, hint) of a missing dependency
        self.committed: set[str] = set()
        self._no_text = no_text
        self._units: dict[int, _Unit] = {}
        self._doc_units: dict[str, set[int]] = {d: set() for d in self.docs}
        self._seen: dict[str, Counter[int]] = {d: Counter() for d in self.docs}
        self._regions: dict[str, bool] = {}
        self._sources: dict[str, str] = {}

    # -- what the workers report ------------------------------------------------------

    def add(self, token: str) -> None:
        """One ``token`` row of the encoder stage."""
        data = json.loads(token)
        for note in data["notes"]:
            self._note(note)
        if not data["docs"]:
            return  # nothing written (only notes, or every document in it failed)
        unit_id = len(self._units)
        pages = {doc: list(info["pages"]) for doc, info in data["docs"].items()}
        self._units[unit_id] = _Unit(list(data["fragments"]), pages)
        for doc, info in data["docs"].items():
            self._doc_units.setdefault(doc, set()).add(unit_id)
            self._seen.setdefault(doc, Counter()).update(info["pages"])
            self._regions[doc] = self._regions.get(doc, False) or bool(info["regions"])

    def _note(self, note: dict) -> None:
        doc, kind = note["doc_id"], note["kind"]
        self._sources[doc] = note["source"]
        if kind == "expect":
            self.expected[doc] = int(note["pages"])
        elif kind == "failed":
            self.failed.setdefault(doc, FileFailure(**note["failure"]))
        elif kind == "fatal" and self.fatal is None:
            self.fatal = (note["message"], note["hint"])

    # -- what the coordinator asks -----------------------------------------------------

    def pages_written(self) -> int:
        return sum(sum(c.values()) for c in self._seen.values())

    def _whole(self, doc: str) -> bool:
        """Every page of ``doc`` written exactly once (and it has text, if it must)."""
        if doc in self.failed or doc not in self.expected:
            return False
        seen = self._seen.get(doc, Counter())
        if set(seen) != set(range(1, self.expected[doc] + 1)) or any(
                n != 1 for n in seen.values()):
            return False
        if self._no_text is not None and not self._regions.get(doc, False):
            self.failed[doc] = self._no_text(self._sources.get(doc, doc))
            return False
        return True

    def _groups(self) -> list[tuple[set[str], set[int]]]:
        """Connected documents and units among those not committed yet."""
        parent: dict[str, str] = {}

        def root(doc: str) -> str:
            while parent.setdefault(doc, doc) != doc:
                parent[doc] = parent[parent[doc]]
                doc = parent[doc]
            return doc

        pending = [d for d in self._doc_units if d not in self.committed]
        for doc in pending:
            for unit in self._doc_units[doc]:
                for other in self._units[unit].pages:
                    parent[root(other)] = root(doc)
        groups: dict[str, tuple[set[str], set[int]]] = {}
        for doc in pending:
            docs, units = groups.setdefault(root(doc), (set(), set()))
            docs.add(doc)
            units.update(self._doc_units[doc])
        return list(groups.values())

    def ready(self) -> list[CommitGroup]:
        """Groups whose every document is whole, not committed yet, in job order."""
        order = {d: i for i, d in enumerate(self.docs)}
        out = []
        for docs, units in self._groups():
            if not all(self._whole(d) for d in docs):
                continue
            ordered = sorted(docs, key=lambda d: order.get(d, len(order)))
            fragments = [f for u in sorted(units) for f in self._units[u].fragments]
            out.append(CommitGroup(ordered, fragments, {d: self.expected[d] for d in ordered}))
        return sorted(out, key=lambda g: order.get(g.docs[0], len(order)))

    def commit_done(self, group: CommitGroup) -> None:
        self.committed.update(group.docs)

    def unfinished(self) -> list[str]:
        """Documents neither committed nor failed: for the next round."""
        return [d for d in self.docs if d not in self.committed and d not in self.failed]

"""Which indexed page answers a query: the map from (file, page) truth to page keys.

Queries name the file they were written against (a path or a bare file name) and a page
of it. The index holds the files actually indexed, which differ from those when PDFs were
re-rendered as one image per page; each indexed page therefore records its *origin*.
"""

from __future__ import annotations

__all__ = ["IndexedPage", "PageCatalog"]

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .queries import Query


@dataclass(frozen=True)
class IndexedPage:
    key: str  # doc_id:page, as the index and hits name it
    source: str  # the indexed file (absolute)
    page: int
    origin: str  # the file queries refer to (absolute)
    origin_page: int


class PageCatalog:
    """Look up the page key of a query's truth by absolute path, else by file name."""

    def __init__(self, pages: Iterable[IndexedPage]) -> None:
        self.pages = list(pages)
        self._by_path = {(p.origin, p.origin_page): p.key for p in self.pages}
        self._by_name: dict[tuple[str, int], set[str]] = {}
        for p in self.pages:
            self._by_name.setdefault((Path(p.origin).name, p.origin_page), set()).add(p.key)

    def truth_key(self, query: Query) -> tuple[str | None, str]:
        """The key of the page that answers ``query``, or None and the reason."""
        path = Path(query.source)
        if path.is_absolute():
            key = self._by_path.get((str(path.resolve()), query.page))
            if key is not None:
                return key, ""
        keys = self._by_name.get((path.name, query.page), set())
        if len(keys) == 1:
            return next(iter(keys)), ""
        if len(keys) > 1:
            return None, "file name matches several indexed files"
        known = any(Path(p.origin).name == path.name for p in self.pages)
        return None, "page not indexed" if known else "file not indexed"

    def resolve(self, queries: Iterable[Query]) -> tuple[list[tuple[Query, str]], Counter]:
        """Queries paired with their truth key; the rest counted by reason."""
        resolved, missing = [], Counter()
        for query in queries:
            key, why = self.truth_key(query)
            if key is None:
                missing[why] += 1
            else:
                resolved.append((query, key))
        return resolved, missing

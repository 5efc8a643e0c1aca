"""Lexical search for FAISS collections: BM25 in memory, rebuilt from the stored region text.

FAISS has no text index, and the region text is already in every segment, so the BM25
index (``retriever.search.bm25``) is derived data: built on the first lexical search of a
generation and kept with that generation's ``LiveView``, never written to disk. The costly
part, analyzing the text, is kept per segment: segments never change, so a commit that
adds one document analyzes only that document's pages.
"""

from __future__ import annotations

__all__ = ["SegmentTerms"]

import threading
from collections.abc import Sequence

from retriever.protocols import RegionScore
from retriever.search.bm25 import BM25
from retriever.search.lexical import QueryTerms, region_terms

from .state import LiveView
from .store import Segment


class SegmentTerms:
    """Per segment, each page's region terms; per view, the BM25 over its live pages."""

    def __init__(self) -> None:
        self._terms: dict[str, list[list[str]]] = {}  # segment name -> per row
        self._lock = threading.Lock()

    def _of(self, segment: Segment) -> list[list[str]]:
        with self._lock:
            found = self._terms.get(segment.name)
        if found is None:
            found = [region_terms(regions) for regions in segment.regions]
            with self._lock:
                self._terms[segment.name] = found
        return found

    def index(self, view: LiveView) -> BM25:
        def build() -> BM25:
            per_segment = [self._of(s) for s in view.segments]
            with self._lock:  # forget segments that merges have retired
                live = {s.name for s in view.segments}
                for name in [n for n in self._terms if n not in live]:
                    del self._terms[name]
            return BM25({str(key): per_segment[g][r] for key, g, r in
                         zip(view.keys.tolist(), view.seg.tolist(), view.row.tolist())})

        return view.cached("lexical", build)

    def search(self, view: LiveView, queries: Sequence[QueryTerms],
               k: int) -> list[list[RegionScore]]:
        return self.index(view).search(queries, k)

    def page_terms(self, view: LiveView, keys: Sequence[str]) -> dict[str, list[str]]:
        return self.index(view).page_terms(keys)

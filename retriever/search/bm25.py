"""Okapi BM25 in memory over the regions of pages.

For backends without a full-text index of their own (FAISS): built from the stored region
terms (``lexical.region_terms``), it answers what ``LexicalIndexer.lexical_search`` asks
for with the same scoring as Lance's inverted index (k1 = 1.2, b = 0.75, idf =
ln(1 + (N - n + 0.5) / (n + 0.5))), so fusion sees comparable numbers from every backend.
It is derived data: rebuilt from the stored text when the pages change, never persisted.
"""

from __future__ import annotations

__all__ = ["BM25", "K1", "B"]

from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..protocols import RegionScore
from .lexical import QueryTerms

K1 = 1.2
B = 0.75


class _Postings:
    """One BM25 corpus: per term, the documents holding it and how often."""

    def __init__(self, docs: Sequence[Sequence[str]]) -> None:
        lengths = np.fromiter((len(d) for d in docs), np.float32, len(docs))  # (D,)
        self.n = len(docs)
        self._norm = K1 * (1 - B + B * lengths / max(float(lengths.mean()), 1e-9)
                           ) if self.n else lengths
        gathered: dict[str, tuple[list[int], list[int]]] = {}
        for i, doc in enumerate(docs):
            for term, tf in Counter(doc).items():
                ids, tfs = gathered.setdefault(term, ([], []))
                ids.append(i)
                tfs.append(tf)
        self._postings = {t: (np.asarray(ids, np.int64), np.asarray(tfs, np.float32))
                          for t, (ids, tfs) in gathered.items()}

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        out = np.zeros(self.n, np.float32)  # (D,)
        for term in dict.fromkeys(terms):
            found = self._postings.get(term)
            if found is None:
                continue
            ids, tf = found
            idf = np.log1p((self.n - ids.size + 0.5) / (ids.size + 0.5))
            out[ids] += idf * tf * (K1 + 1) / (tf + self._norm[ids])
        return out


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best positive scores, best first (ties: lower index first)."""
    hits = np.flatnonzero(scores > 0)
    if hits.size > k:
        hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
    return hits[np.lexsort((hits, -scores[hits]))]


class BM25:
    """BM25 over the regions of ``pages`` (key -> per region its space-joined terms), each
    region one document, as ``LexicalIndexer.lexical_search`` defines it."""

    def __init__(self, pages: dict[str, Sequence[str]]) -> None:
        self.keys = list(pages)
        self.terms = {key: list(regions) for key, regions in pages.items()}
        docs: list[list[str]] = []
        owner: list[int] = []
        position: list[int] = []
        for p, key in enumerate(self.keys):
            for r, text in enumerate(self.terms[key]):
                docs.append(text.split())
                owner.append(p)
                position.append(r)
        self._regions = _Postings(docs)
        self._owner = np.asarray(owner, np.int64)  # (R,) page of each region
        self._position = np.asarray(position, np.int64)  # (R,) its index on the page

    def __len__(self) -> int:
        return len(self.keys)

    def search(self, queries: Sequence[QueryTerms], k: int) -> list[list[RegionScore]]:
        out: list[list[RegionScore]] = []
        for query in queries:
            if not query.terms or k <= 0 or not self.keys:
                out.append([])
                continue
            scores = self._regions.scores(query.terms)  # (R,)
            out.append([RegionScore(self.keys[int(self._owner[i])], int(self._position[i]),
                                    float(scores[i])) for i in _top(scores, k).tolist()])
        return out

    def page_terms(self, keys: Sequence[str]) -> dict[str, list[str]]:
        return {key: self.terms[key] for key in keys if key in self.terms}

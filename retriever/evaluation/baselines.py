"""The two baselines a user would try first, run on the same page texts as our index.

* ``BM25Pages``: Okapi BM25 (bm25s, English stopwords, Snowball stemming when PyStemmer
  is installed) over each page's text; pages with no matching term are not returned.
* ``ChunkEmbeddings``: the usual chunked-embedding recipe: each page's text split into
  500-character chunks overlapping by 50, every chunk embedded with a sentence encoder
  (one vector per text, from ``encode_queries``), cosine similarity, a page scored by its
  best chunk. The best chunk's box is returned as the page's one region.
"""

from __future__ import annotations

__all__ = ["RankedPage", "BM25Pages", "ChunkEmbeddings"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, RetrieverError
from ..types import BBox
from .pagetext import PageText, chunk_words

_EVAL_HINT = "pip install 'vision-retriever[eval]'"


@dataclass(frozen=True)
class RankedPage:
    """One page a system returned for a query, with the regions it selected on it."""

    key: str
    score: float
    regions: tuple[BBox, ...] = ()


def _top_k(scores: np.ndarray, keys: Sequence[str], k: int,
           regions: Sequence[tuple[BBox, ...]] | None = None) -> list[RankedPage]:
    order = np.argsort(-scores, kind="stable")[:k]  # stable: ties keep page order
    return [RankedPage(keys[i], float(scores[i]), regions[i] if regions else ())
            for i in order if np.isfinite(scores[i])]


class BM25Pages:
    """BM25 over whole pages."""

    name = "bm25"

    def __init__(self, pages: Sequence[PageText]) -> None:
        try:
            import bm25s
        except ImportError as exc:
            raise MissingDependencyError("the BM25 baseline needs bm25s", hint=_EVAL_HINT) from exc
        try:
            import Stemmer

            self._stemmer: Any = Stemmer.Stemmer("english")
        except ImportError:  # stemming helps BM25 a little; without it, it still runs
            self._stemmer = None
        self._bm25s = bm25s
        self.keys = [p.key for p in pages]
        if not self.keys:
            raise RetrieverError("the BM25 baseline needs at least one page")
        tokens = bm25s.tokenize([p.text for p in pages], stopwords="en", stemmer=self._stemmer,
                                show_progress=False)
        if not tokens.vocab:  # bm25s cannot index an empty vocabulary
            raise RetrieverError("the BM25 baseline found no text on any page",
                                 hint="pages without a text layer need OCR (drop --no-ocr)")
        self._index = bm25s.BM25()
        self._index.index(tokens, show_progress=False)

    def rank(self, texts: Sequence[str], k: int) -> list[list[RankedPage]]:
        queries = self._bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stemmer,
                                       show_progress=False, return_ids=False)
        out = []
        for tokens in queries:
            if not tokens:  # nothing but stopwords or unknown words: no evidence at all
                out.append([])
                continue
            scores = np.asarray(self._index.get_scores(tokens), np.float64)  # (n_pages,)
            scores[scores <= 0] = -np.inf  # a page sharing no term is not a result
            out.append(_top_k(scores, self.keys, k))
        return out


class ChunkEmbeddings:
    """Max-over-chunks cosine similarity with one embedding per 500-character chunk."""

    name = "chunks"

    def __init__(self, pages: Sequence[PageText], encoder: Any, *, size: int = 500,
                 overlap: int = 50, batch: int = 256) -> None:
        self._encoder = encoder
        self.keys = [p.key for p in pages]
        chunks = [c for p in pages for c in chunk_words(p, size, overlap)]
        if not chunks:
            raise RetrieverError("the chunk baseline found no text on any page",
                                 hint="pages without a text layer need OCR (drop --no-ocr)")
        position = {key: i for i, key in enumerate(self.keys)}
        self._page_of = np.asarray([position[c.key] for c in chunks], np.int64)  # (n_chunks,)
        self._boxes = [c.bbox for c in chunks]
        self.n_chunks = len(chunks)
        self._vectors = self._embed([c.text for c in chunks], batch)  # (n_chunks, dim)

    def _embed(self, texts: Sequence[str], batch: int = 256) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), batch):
            for mv in self._encoder.encode_queries(list(texts[start:start + batch])):
                rows.append(np.asarray(mv.vectors, np.float32)[0])  # one vector per text
        return np.stack(rows)

    def rank(self, texts: Sequence[str], k: int) -> list[list[RankedPage]]:
        queries = self._embed(texts)  # (n_queries, dim), L2-normalized: dot = cosine
        sims = queries @ self._vectors.T  # (n_queries, n_chunks)
        n_pages = len(self.keys)
        out = []
        for row in sims:
            best = np.full(n_pages, -np.inf)
            np.maximum.at(best, self._page_of, row)  # (n_pages,) best chunk per page
            best_chunk = np.full(n_pages, -1, np.int64)
            # The argmax chunk of each page, for its box: the last chunk equal to the max.
            hit = row >= best[self._page_of]
            best_chunk[self._page_of[hit]] = np.flatnonzero(hit)
            regions = [(self._boxes[c],) if c >= 0 else () for c in best_chunk]
            out.append(_top_k(best, self.keys, k, regions))
        return out

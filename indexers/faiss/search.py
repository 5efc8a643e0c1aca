"""Search over a ``LiveView``: exact MaxSim, or FAISS candidates then exact MaxSim.

Stage 1 asks the FAISS index for the ``token_k`` nearest stored vectors of every query
vector and scores pages from those hits (``retriever.search.imputed``). The ``budget``
best pages by that score go to stage 2, exact MaxSim over their full stored vectors with
``retriever.search.scoring``. Returned scores are therefore always exact; only which pages reach
stage 2 is approximate.

Exact search over every page keeps a float32 copy of the collection in memory (twice its
float16 size on disk) while that copy stays under ``EXACT_CACHE_BYTES``. Above it, the
stored pages are streamed through the same kernel a chunk at a time, so memory no longer
grows with the collection; the scores agree with the copy's to float32 rounding.
"""

from __future__ import annotations

__all__ = [
    "EXACT_CACHE_BYTES", "STREAM_VECTORS", "check_options", "empty_query_scores",
    "exact_search", "streamed_scores", "candidate_positions", "rerank", "two_stage",
]

import numpy as np

from retriever.errors import UsageError
from retriever.protocols import ScoredPage
from retriever.search.scoring import maxsim_scores, maxsim_scores_many, rank_pages
from retriever.search.scoring_torch import float32_copy, torch_available
from retriever.search.imputed import imputed_page_scores
from retriever.types import MultiVector

from .ann import TokenIndex
from .state import LiveView


#: the largest float32 copy of a generation's vectors exact search keeps in memory
EXACT_CACHE_BYTES = 1 << 30
#: vectors read, converted and scored at a time when exact search streams the pages
STREAM_VECTORS = 1 << 18


def check_options(**options: int | None) -> None:
    """Search options given per call: each absent or a positive integer."""
    for name, value in options.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise UsageError(f"faiss search option {name}={value!r} is invalid",
                             hint=f"{name} must be a positive integer")


def empty_query_scores(view: LiveView) -> np.ndarray:
    # a query without vectors scores 0 on every page that has vectors (sum over nothing)
    return np.where(view.counts > 0, 0.0, -np.inf).astype(np.float32)  # (P,)


def exact_search(view: LiveView, queries: list[MultiVector], k: int,
                 threads: int | None = None) -> list[list[ScoredPage]]:
    """MaxSim of every query against every live page, in one pass over the vectors."""
    query_vectors = [q.vectors for q in queries]
    if view.has_exact() or view.n_vectors * view.dim * 4 <= EXACT_CACHE_BYTES:
        vectors, offsets = view.exact_matrix()  # (N, d), (P+1,)
        scores = maxsim_scores_many(  # (n_queries, P)
            query_vectors, vectors, offsets, threads=threads)
    else:
        scores = streamed_scores(view, query_vectors, threads=threads)
    return [rank_pages(row, view.keys, k) for row in scores]


def streamed_scores(view: LiveView, query_vectors: list[np.ndarray], *,
                    threads: int | None = None,
                    chunk_vectors: int = STREAM_VECTORS) -> np.ndarray:
    """Exact MaxSim of the queries against every live page -> (n_queries, P) float32,
    reading the pages from their segments about ``chunk_vectors`` vectors at a time."""
    scores = np.empty((len(query_vectors), len(view)), np.float32)
    counts = view.counts  # (P,) a property: computed once, not per chunk
    ends = np.cumsum(counts)  # (P,) vectors up to and including each page
    convert = view.stored_dtype != np.float32 and torch_available()
    buffer = np.empty((0, view.dim), np.float32)  # reused: the largest chunk so far
    start = 0
    while start < len(view):
        first = int(ends[start] - counts[start])  # the chunk's first vector
        stop = int(np.searchsorted(ends, first + chunk_vectors, side="right"))
        stop = min(max(stop, start + 1), len(view))  # whole pages, at least one
        positions = np.arange(start, stop)
        if convert:  # the stored float16 copied, then cast by torch into the buffer
            stored, offsets = view.gather(positions, dtype=None)
            if buffer.shape[0] < stored.shape[0]:
                buffer = np.empty(stored.shape, np.float32)
            vectors = float32_copy(stored, buffer[:stored.shape[0]])
        else:  # float32 as stored, or numpy's cast where torch is missing
            vectors, offsets = view.gather(positions)
        scores[:, start:stop] = maxsim_scores_many(query_vectors, vectors, offsets,
                                                   threads=threads)
        start = stop
    return scores


def candidate_positions(index: TokenIndex, view: LiveView, query: np.ndarray, *,
                        token_k: int, budget: int, nprobe: int | None = None,
                        ef_search: int | None = None) -> np.ndarray:
    """Live positions of at most ``budget`` pages most likely to score best (stage 1)."""
    sims, pages = index.search(query, token_k, nprobe=nprobe, ef_search=ef_search)  # (q, t)
    pos = view.positions(pages)  # (q, t); -1 where no hit or not a live page
    unique, approx = imputed_page_scores(sims, pos)  # (U,), (U,)
    if unique.size <= budget:
        return unique
    keep = np.argpartition(-approx, budget - 1)[:budget]
    return unique[keep]


def rerank(view: LiveView, query: MultiVector, positions: np.ndarray, k: int,
           threads: int | None = None) -> list[ScoredPage]:
    """Exact MaxSim of ``query`` over the candidate pages, top ``k`` (stage 2)."""
    if positions.size == 0:
        return []
    positions = np.sort(positions)
    vectors, offsets = view.gather(positions)  # (N_c, d), (C+1,)
    scores = maxsim_scores(query.vectors, vectors, offsets, threads=threads)  # (C,)
    return rank_pages(scores, view.keys[positions], k)


def two_stage(index: TokenIndex, view: LiveView, query: MultiVector, k: int, *, budget: int,
              token_k: int, nprobe: int | None = None, ef_search: int | None = None,
              threads: int | None = None) -> list[ScoredPage]:
    """Stage 1 candidates from ``index``, stage 2 exact MaxSim over them -> top ``k``."""
    if query.n == 0:
        return rank_pages(empty_query_scores(view), view.keys, k)
    positions = candidate_positions(index, view, query.vectors, token_k=token_k,
                                    budget=budget, nprobe=nprobe, ef_search=ef_search)
    return rerank(view, query, positions, k, threads)

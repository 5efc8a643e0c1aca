"""Late-interaction (MaxSim) scoring over ragged pages, in plain numpy.

Pages are stored back to back in one matrix ``vectors`` (N, d) with ``offsets`` (P+1,):
page ``p`` owns rows ``offsets[p]:offsets[p+1]``. Nothing is padded, so no zero vector can
pose as a maximum, and a page with no vectors scores ``-inf`` (it can never be a hit).

The kernel walks the pages in blocks of whole pages (about ``block_vectors`` rows), does one
matmul per block, takes the per-page maximum with ``np.maximum.reduceat`` and sums it per
query right away. Peak memory is one block of similarities plus the (P, n_queries) scores,
never (N, q). With ``threadpoolctl`` installed, blocks are spread
over a small thread pool with BLAS pinned to one thread per worker, because
``reduceat`` is single-threaded and would otherwise leave cores idle (about 1.2-1.4x on
2 cores); without it the loop runs serially and BLAS uses its own threads.

This module must not import torch: the index and the CLI use it without a model loaded.
"""

from __future__ import annotations

__all__ = [
    "maxsim_scores",
    "maxsim_scores_many",
    "rank_pages",
    "top_k",
    "vector_relevance",
]

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import RetrieverError
from ..protocols import ScoredPage
from .ragged import (DEFAULT_BLOCK_ELEMENTS, PageBlock, check_offsets, plan_blocks,
                     stack_queries)

_MIN_BLOCK_VECTORS = 1024
_MAX_BLOCK_VECTORS = 65536


def _as_f32_matrix(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 2:
        raise RetrieverError(f"{what} must be 2-D (n, d), got shape {a.shape}")
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


def _block_scores(queries_t: np.ndarray, query_starts: np.ndarray, vectors: np.ndarray,
                  block: PageBlock) -> np.ndarray:
    """Scores of the block's pages for every query -> (pages, n_queries).

    ``queries_t`` (d, q_total) holds the stacked query vectors, query ``i`` owning the
    columns from ``query_starts[i]``; only queries with at least one vector are passed.
    """
    rows = block.take(vectors)
    if rows.dtype != np.float32:
        rows = rows.astype(np.float32)  # compute in float32 even when stored float16
    sims = rows @ queries_t  # (block_rows, q_total); measured ~1.7x faster than Q @ V.T
    # every page of a block has rows (the planner leaves empty pages out), so each
    # reduceat segment is exactly one page
    starts = np.concatenate(([0], np.cumsum(block.lengths)[:-1]))  # (pages,)
    best = np.maximum.reduceat(sims, starts, axis=0)  # (pages, q_total)
    return np.add.reduceat(best, query_starts, axis=1)  # (pages, nq)


def _thread_limiter() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def maxsim_scores_many(
    queries: Sequence[np.ndarray],
    vectors: np.ndarray,
    offsets: np.ndarray,
    *,
    block_vectors: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """MaxSim of several queries against every page in one pass over ``vectors``.

    ``queries``: a sequence of (q_i, d) arrays; ``vectors`` (N, d) float32 or float16;
    ``offsets`` (P+1,). Returns (len(queries), P) float32, ``-inf`` for pages with no
    vectors. Stacking the queries reads the stored vectors once for all of them.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise RetrieverError(f"vectors must be 2-D (N, d), got shape {vectors.shape}")
    offsets = check_offsets(offsets, vectors.shape[0])
    dim = vectors.shape[1]
    n_pages = offsets.size - 1
    if not len(queries):
        return np.zeros((0, n_pages), dtype=np.float32)
    # a query without vectors scores 0 on every page that has some: it is left out of the
    # kernel, whose per-query add.reduceat cannot express empty segments either
    stacked, query_starts, live = stack_queries(
        [_as_f32_matrix(q, "query vectors") for q in queries], dim)  # (q_total, d)
    # a transposed view, not a contiguous copy: BLAS then reads Q row-major (measured 2x)
    queries_t = stacked.T  # (d, q_total)
    if block_vectors is None:
        block_vectors = DEFAULT_BLOCK_ELEMENTS["numpy"] // max(stacked.shape[0], 1)
        block_vectors = min(max(block_vectors, _MIN_BLOCK_VECTORS), _MAX_BLOCK_VECTORS)
    if block_vectors < 1:
        raise RetrieverError(f"block_vectors must be positive, got {block_vectors}")
    blocks = plan_blocks(offsets, block_vectors)
    # pages without vectors are in no block and stay -inf
    live_scores = np.full((n_pages, live.size), -np.inf, dtype=np.float32)  # (P, n_live)

    def run(chunk: list[PageBlock]) -> None:
        for block in chunk:
            live_scores[block.out] = _block_scores(queries_t, query_starts, vectors, block)

    n_threads = _default_threads() if threads is None else max(1, int(threads))
    limiter = _thread_limiter()
    if live.size and n_threads > 1 and len(blocks) > 1 and limiter is not None:
        # interleave blocks so every worker gets a similar share; BLAS runs one thread per
        # worker, otherwise its threads and ours oversubscribe the cores (measured 10x slower)
        chunks = [blocks[i::n_threads] for i in range(n_threads)]
        with limiter(1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(run, chunks))
    elif live.size and limiter is not None and threads is not None:
        # an explicit thread budget holds for BLAS too (threads=1: a truly serial kernel)
        with limiter(n_threads, user_api="blas"):
            run(blocks)
    elif live.size:
        run(blocks)

    empty_page = np.diff(offsets) == 0  # (P,)
    scores = np.zeros((len(queries), n_pages), dtype=np.float32)  # (n_queries, P)
    scores[live] = live_scores.T
    scores[:, empty_page] = -np.inf
    return scores


def maxsim_scores(
    queries: np.ndarray,
    vectors: np.ndarray,
    offsets: np.ndarray,
    *,
    block_vectors: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Late-interaction score of one query against every page -> (P,) float32.

    ``score[p] = sum_i max_j queries[i] . vectors[j]`` over the rows ``j`` of page ``p``
    (``offsets[p]:offsets[p+1]``); ``-inf`` for a page with no vectors.
    """
    return maxsim_scores_many(
        [queries], vectors, offsets, block_vectors=block_vectors, threads=threads
    )[0]


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best entries of ``scores``, best first -> (indices int64, scores).

    Ties are broken by the lower index; ``-inf`` and NaN entries are never returned, so
    fewer than ``k`` come back when fewer pages can be scored.
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise RetrieverError(f"scores must be 1-D, got shape {scores.shape}")
    if k <= 0:
        return np.zeros(0, np.int64), scores[:0]
    valid = np.flatnonzero(scores > -np.inf)  # NaN compares False, so it is dropped too
    if valid.size > k:
        vals = scores[valid]
        # the k-th best value; keep everything at least that good so ties resolve by index
        kth = np.partition(vals, vals.size - k)[vals.size - k]
        valid = valid[vals >= kth]
    order = np.lexsort((valid, -scores[valid].astype(np.float64)))[:k]
    idx = valid[order].astype(np.int64)
    return idx, scores[idx]


def vector_relevance(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Per stored vector, its best similarity with any query vector -> (n,) float32.

    This is what grounding spreads onto regions. With no query vectors every entry is
    ``-inf`` (nothing is relevant).
    """
    q = _as_f32_matrix(queries, "query vectors")  # (q, d)
    v = _as_f32_matrix(vectors, "page vectors")  # (n, d)
    if q.shape[1] != v.shape[1]:
        raise RetrieverError(f"query dim {q.shape[1]} does not match page dim {v.shape[1]}")
    if q.shape[0] == 0:
        return np.full(v.shape[0], -np.inf, dtype=np.float32)
    if v.shape[0] == 0:
        return np.zeros(0, dtype=np.float32)
    return (v @ q.T).max(axis=1)  # (n, q) -> (n,)


def rank_pages(scores: np.ndarray, keys: np.ndarray, k: int) -> list[ScoredPage]:
    """Top ``k`` pages of one score row, best first; equal scores in key order.

    Every page tied with the k-th score competes, so the result never depends on where a
    page happens to sit in storage (compaction, merges and rewrites move pages).
    """
    idx, best = top_k(scores, k)  # (<=k,)
    if idx.size == 0:
        return []
    tied = np.flatnonzero(scores >= best[-1])
    order = sorted(tied.tolist(), key=lambda i: (-float(scores[i]), keys[i]))[:k]
    return [ScoredPage(str(keys[i]), float(scores[i])) for i in order]

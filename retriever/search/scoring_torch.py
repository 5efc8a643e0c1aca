"""MaxSim kernels in torch: exact float32 scoring, and the block driver the code kernels use.

The numpy kernel (``retriever.search.scoring``) stays the reference and the fallback. For exact
float32 scoring of one query both are bound by the same BLAS matmul and measure alike here
(about 10.5k pages/s on 2 idle cores, 3.5-3.9k on a busy shared machine; colpali-engine's
scorer 1.1k on the same busy machine, benchmarks/search.py). torch earns its place with
the code kernels (int8 matmuls, ``retriever.search.quantization_torch``: 4-6x a float32 matmul),
a per-page maximum over a plain reshape, and fewer passes for batched queries. torch is
imported inside the functions only: importing this module (or ``retriever``) never does.

A block is whole pages (``retriever.search.ragged.plan_blocks``): one matmul gives the similarity
of every block row with every query vector, then the maximum per page is taken over a
reshape when the block's pages all have one length (the common case: a ViT encoder gives
every page the same number of patches) or over an explicitly masked padding otherwise.
Nothing relies on zero vectors, and a page without rows scores ``-inf``.
"""

from __future__ import annotations

__all__ = [
    "BACKENDS",
    "torch_available",
    "float32_copy",
    "resolve_backend",
    "torch_threads",
    "blocked_maxsim",
    "maxsim_many_torch",
    "exact_maxsim_many",
]

import contextlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, RetrieverError
from .ragged import (DEFAULT_BLOCK_ELEMENTS, PageBlock, check_offsets, page_rows, plan_blocks,
                     stack_queries)

BACKENDS = ("auto", "torch", "numpy")
_MIN_BLOCK_ROWS = 1024
_MAX_BLOCK_ROWS = 1 << 17


@lru_cache(maxsize=1)
def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def torch_available() -> bool:
    """True when torch is installed and ``RETRIEVER_KERNEL`` does not ask for numpy."""
    return os.environ.get("RETRIEVER_KERNEL", "").lower() != "numpy" and _torch_installed()


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``torch`` when available, else ``numpy``; validates the name."""
    if backend not in BACKENDS:
        raise RetrieverError(f"unknown kernel backend {backend!r}", hint=f"use one of {BACKENDS}")
    if backend == "auto":
        return "torch" if torch_available() else "numpy"
    if backend == "torch" and not _torch_installed():
        raise MissingDependencyError("the torch kernel needs torch", hint="pip install torch")
    return backend


class _SharedThreadSetting:
    """torch's intra-op thread count is one process-wide number: the first of several
    overlapping searches sets it, the last one out restores it. Nothing is held while a
    search runs, so concurrent searches (threads of a server) never wait for each other;
    an overlapping search that asks for another count runs with the one in force."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._before = 0

    @contextlib.contextmanager
    def using(self, threads: int) -> Iterator[None]:
        import torch

        with self._lock:
            if self._holders == 0:
                self._before = torch.get_num_threads()
                torch.set_num_threads(max(1, int(threads)))
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    torch.set_num_threads(self._before)


_SHARED_THREADS = _SharedThreadSetting()


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, restoring torch's setting afterwards."""
    if threads is None:
        yield
        return
    with _SHARED_THREADS.using(threads):
        yield


def default_block_rows(q_total: int,
                       block_elements: int = DEFAULT_BLOCK_ELEMENTS["torch"]) -> int:
    rows = block_elements // max(q_total, 1)
    return int(min(max(rows, _MIN_BLOCK_ROWS), _MAX_BLOCK_ROWS))


def as_tensor(block: np.ndarray) -> Any:
    """A numpy block as a tensor, without a copy when the block is writable."""
    import torch

    if not block.flags.writeable:  # a read-only memmap: torch only shares writable memory
        block = np.array(block)
    return torch.from_numpy(np.ascontiguousarray(block))


def float32_copy(block: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``block`` (n, d) of any float dtype cast into ``out`` (n, d) float32 -> ``out``.

    torch's cast is vectorized where numpy's float16 -> float32 is not: 1.4 ms against
    11.8 ms for 8.4M values here. The cast is exact, so scores computed from it are the
    ones a float32 copy of the stored vectors gives.
    """
    import torch

    if out.shape != block.shape or out.dtype != np.float32:
        raise RetrieverError(f"float32_copy: {block.shape} into {out.shape} {out.dtype}")
    torch.from_numpy(out).copy_(as_tensor(block))
    return out


def _segment_max(sims: Any, block: PageBlock) -> Any:
    """(rows, q) similarities -> (pages, q) maximum over each page's rows."""
    import torch

    q = sims.shape[1]
    if block.uniform is not None:
        return sims.view(block.n_pages, block.uniform, q).amax(dim=1)  # (pages, q)
    # ragged: one numpy reduceat over the tensor's own memory. (Padding every page to the
    # longest one cost 5-10x more: text pages range from a few to a hundred lines.) The
    # segments start at the first row of each page with rows; the next start (or the end
    # of the block) closes each, and pages without rows get the lowest value.
    lengths = np.asarray(block.lengths, np.int64)  # (pages,)
    firsts = np.cumsum(lengths) - lengths  # (pages,)
    values = sims.numpy()  # (rows, q), no copy
    low = -np.inf if sims.is_floating_point() else np.iinfo(values.dtype).min
    best = np.full((block.n_pages, q), low, dtype=values.dtype)  # (pages, q)
    filled = lengths > 0
    if filled.any():
        best[filled] = np.maximum.reduceat(values, firsts[filled], axis=0)
    return torch.from_numpy(best)


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def blocked_maxsim(
    blocks: Sequence[PageBlock],
    n_out: int,
    starts: np.ndarray,
    q_total: int,
    similarities: Callable[[PageBlock], Any],
    finish: Callable[[Any], Any] | None = None,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """The shared driver: per block, ``similarities(block)`` -> (rows, q_total) tensor;
    maxima per page, ``finish`` (per-vector maxima -> float32 contributions), sums per
    query -> (n_live, n_out) float32, ``-inf`` where a page has no rows.

    Blocks are dealt to ``threads`` Python workers (default: the usable cores), each
    running torch single-threaded. One OpenMP team per op would synchronise its threads
    a few times per block; on a busy machine a descheduled thread then stalls the others
    (measured here: 2-7x slower under load, equal when idle). torch ops release the GIL.
    """
    import torch

    n_live = starts.size
    out = np.full((n_live, n_out), -np.inf, dtype=np.float32)  # (n_live, n_out)
    if n_live == 0 or not blocks:
        return out
    # column j of the stacked queries belongs to query owner[j]: one small matmul with
    # this 0/1 matrix sums the per-vector maxima of every query at once
    owner = np.repeat(np.arange(n_live), np.diff(np.append(starts, q_total)))  # (q_total,)
    indicator = torch.zeros(q_total, n_live)
    indicator[torch.arange(q_total), torch.from_numpy(owner)] = 1.0  # (q_total, n_live)

    def run(chunk: Sequence[PageBlock]) -> None:
        with torch.inference_mode():  # thread-local: every worker enters it
            for block in chunk:
                best = _segment_max(similarities(block), block)  # (pages, q_total)
                best = finish(best) if finish is not None else best.float()
                out[:, block.out] = (best @ indicator).numpy().T  # (n_live, pages)

    workers = min(_default_workers() if threads is None else max(1, int(threads)),
                  len(blocks))
    if workers == 1:
        with torch_threads(threads):
            run(blocks)
        return out
    # interleaved, so every worker gets a similar share of a ragged plan
    with torch_threads(1):
        list(_kernel_pool(workers).map(run, [blocks[i::workers] for i in range(workers)]))
    return out


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _kernel_pool(workers: int) -> ThreadPoolExecutor:
    """One long-lived pool per size: starting threads for every search cost about 8 ms
    per query here, and concurrent searches sharing a pool queue their blocks on the same
    workers instead of oversubscribing the cores."""
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(workers,
                                                        thread_name_prefix="maxsim")
        return pool


def maxsim_many_torch(
    queries: Sequence[np.ndarray],
    vectors: np.ndarray,
    offsets: np.ndarray,
    *,
    pages: np.ndarray | None = None,
    block_rows: int | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Exact MaxSim of every query against every page (or ``pages``), computed in float32.

    ``vectors`` (N, d) float32 or float16 (a memmap is fine: only blocks are read);
    ``offsets`` (P+1,). Returns (n_queries, P or len(pages)) float32, ``-inf`` for pages
    with no vectors, 0 for a query with no vectors (on pages that have some).
    """
    import torch

    if not isinstance(vectors, np.ndarray):  # a memmap is an ndarray and stays one
        vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise RetrieverError(f"vectors must be 2-D (N, d), got shape {vectors.shape}")
    offsets = check_offsets(offsets, vectors.shape[0])
    stacked, starts, live = stack_queries(queries, vectors.shape[1])  # (q_total, d)
    n_out = offsets.size - 1 if pages is None else len(pages)
    q_total = stacked.shape[0]
    rows = block_rows or default_block_rows(q_total)
    blocks = plan_blocks(offsets, rows, pages)
    q_t = torch.from_numpy(stacked).T  # (d, q_total); a view, BLAS reads it as is

    def similarities(block: PageBlock) -> Any:
        tile = as_tensor(block.take(vectors))  # (rows, d), stored dtype
        if tile.dtype != torch.float32:
            tile = tile.float()  # compute in float32 even when stored in float16
        return tile @ q_t  # (rows, q_total)

    scores = blocked_maxsim(blocks, n_out, starts, q_total, similarities, threads=threads)
    result = np.zeros((len(queries), n_out), dtype=np.float32)  # (n_queries, n_out)
    result[live] = scores
    empty = _empty_pages(offsets, pages)
    result[:, empty] = -np.inf
    return result


def _empty_pages(offsets: np.ndarray, pages: np.ndarray | None) -> np.ndarray:
    lengths = np.diff(offsets)  # (P,)
    if pages is not None:
        lengths = lengths[np.asarray(pages, dtype=np.int64)]
    return lengths == 0


#: below this many multiply-adds a search that has not imported torch yet stays on numpy:
#: importing torch (about 2 s) would cost more than the faster kernel saves, which is what
#: a cold `retriever search` over a text collection would otherwise pay
_TORCH_IMPORT_WORTH = 2e9


def _small_for_torch(queries: Sequence[np.ndarray], vectors: np.ndarray) -> bool:
    if "torch" in sys.modules:
        return False
    rows, dim = (np.shape(vectors) + (0, 0))[:2]
    work = sum(int(np.shape(q)[0]) for q in queries) * int(rows) * int(dim)
    return work < _TORCH_IMPORT_WORTH


def exact_maxsim_many(
    queries: Sequence[np.ndarray],
    vectors: np.ndarray,
    offsets: np.ndarray,
    *,
    pages: np.ndarray | None = None,
    backend: str = "auto",
    threads: int | None = None,
) -> np.ndarray:
    """Exact MaxSim with the fastest kernel at hand: torch when installed, else numpy.

    Same contract as ``maxsim_many_torch``; ``backend`` forces one ("torch", "numpy").
    """
    if backend == "auto" and _small_for_torch(queries, vectors):
        backend = "numpy"
    if resolve_backend(backend) == "torch":
        return maxsim_many_torch(queries, vectors, offsets, pages=pages, threads=threads)
    from .scoring import maxsim_scores_many

    if pages is None:
        return maxsim_scores_many(queries, vectors, offsets, threads=threads)
    offsets = check_offsets(offsets, np.asarray(vectors).shape[0])
    pages = np.asarray(pages, dtype=np.int64)
    lengths = offsets[pages + 1] - offsets[pages]  # (m,)
    sub_offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)  # (m+1,)
    sub = np.asarray(vectors)[page_rows(offsets, pages)]  # (R, d) the chosen pages' rows
    return maxsim_scores_many(queries, sub, sub_offsets, threads=threads)

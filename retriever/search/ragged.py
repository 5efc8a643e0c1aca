"""Walking ragged pages in blocks: the plan every MaxSim kernel (exact or on codes) shares.

Pages are stored back to back, page ``p`` owning rows ``offsets[p]:offsets[p+1]`` of a
matrix. A kernel scores whole pages a block at a time, so its memory stays one block of
similarities however many pages there are. ``plan_blocks`` cuts the pages (all of them, or
a chosen subset such as a first stage's candidates) into blocks of about ``block_rows``
rows, drops pages without rows (they score ``-inf`` and are never hits), and says for each
block whether its pages all have the same length (then a kernel can take the maximum over
a plain reshape instead of a masked, padded one).

No numerical work happens here, and nothing imports torch.
"""

from __future__ import annotations

__all__ = ["DEFAULT_BLOCK_ELEMENTS", "PageBlock", "check_offsets", "plan_blocks", "page_rows",
           "stack_queries", "take_rows"]

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import RetrieverError

#: similarities a kernel holds per block (block rows x query vectors), by kernel. numpy:
#: 2**18 float32 = 1 MiB keeps the block's similarities in L2, which measured fastest
#: (8192 rows at Nq=32). torch: 2**19 = 2 MiB, about 16 ColPali pages at Nq=32, among the
#: fastest of 4-64 pages measured (within 10%).
DEFAULT_BLOCK_ELEMENTS: dict[str, int] = {"numpy": 1 << 18, "torch": 1 << 19}


@dataclass(frozen=True)
class PageBlock:
    """Some pages scored together.

    ``out``: where each page's score goes in the kernel's output (positions in the order
    of the pages asked for); ``rows``: the stored rows, page after page (a slice when they
    are contiguous, so no copy is made); ``lengths``: rows per page, all positive;
    ``uniform``: the common length when every page has it, else ``None``.
    """

    out: slice | np.ndarray
    rows: slice | np.ndarray
    lengths: np.ndarray
    uniform: int | None

    @property
    def n_pages(self) -> int:
        return int(self.lengths.size)

    @property
    def n_rows(self) -> int:
        return int(self.lengths.sum())

    def take(self, array: np.ndarray) -> np.ndarray:
        """The block's rows of ``array`` (``take_rows``)."""
        return take_rows(array, self.rows)


def take_rows(array: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
    """``array[rows]`` along the first axis: a view for a slice, else a copy made with
    ``np.take``, which copied a block of scattered int8 code rows 2.5x faster than fancy
    indexing here (0.05 against 0.13 ms for 16 ColPali pages)."""
    if isinstance(rows, slice):
        return array[rows]
    return np.take(array, rows, axis=0)


def check_offsets(offsets: np.ndarray, n_rows: int) -> np.ndarray:
    """Validate page offsets (P+1,) against a matrix of ``n_rows`` rows -> int64 copy."""
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or offsets.size == 0 or not np.issubdtype(offsets.dtype, np.integer):
        raise RetrieverError(f"offsets must be a 1-D integer array (P+1,), got {offsets.shape}")
    offsets = offsets.astype(np.int64, copy=False)
    if offsets[0] != 0 or offsets[-1] != n_rows:
        raise RetrieverError(
            f"offsets must start at 0 and end at the number of vectors ({n_rows}), "
            f"got {int(offsets[0])}..{int(offsets[-1])}"
        )
    if (np.diff(offsets) < 0).any():
        raise RetrieverError("offsets must be non-decreasing")
    return offsets


def page_rows(offsets: np.ndarray, pages: np.ndarray) -> np.ndarray:
    """Row indices of ``pages``, page after page, in the order given -> (R,) int64."""
    pages = np.asarray(pages, dtype=np.int64)
    starts = offsets[pages]  # (m,)
    lengths = offsets[pages + 1] - starts  # (m,)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    # each row's index is its page's start plus its position inside the page
    firsts = np.cumsum(lengths) - lengths  # (m,) where each page begins in the output
    return np.repeat(starts - firsts, lengths) + np.arange(total, dtype=np.int64)


def _uniform(lengths: np.ndarray) -> int | None:
    lo, hi = int(lengths.min()), int(lengths.max())
    return lo if lo == hi else None


def plan_blocks(
    offsets: np.ndarray, block_rows: int, pages: np.ndarray | None = None
) -> list[PageBlock]:
    """Blocks of whole pages of about ``block_rows`` rows (a bigger page gets its own).

    ``pages`` (indices into ``offsets``) limits the plan to those pages; outputs are then
    positions in ``pages``. Pages are visited in storage order either way, which keeps the
    reads of a subset as sequential as they can be.
    """
    if block_rows < 1:
        raise RetrieverError(f"block_rows must be positive, got {block_rows}")
    n_pages = offsets.size - 1
    if pages is None:
        order = None
        chosen = np.arange(n_pages, dtype=np.int64)
    else:
        pages = np.asarray(pages, dtype=np.int64)
        if pages.size and (pages.min() < 0 or pages.max() >= n_pages):
            raise RetrieverError(f"page indices must lie in [0, {n_pages})")
        order = np.argsort(pages, kind="stable")  # (m,) storage order of the subset
        chosen = pages[order]
    lengths = offsets[chosen + 1] - offsets[chosen]  # (m,)
    keep = np.flatnonzero(lengths > 0)  # pages without rows stay -inf in the output
    if keep.size == 0:
        return []
    # a block ends when its pages' running row count passes the next multiple of block_rows
    ends = np.cumsum(lengths[keep])  # (kept,)
    block_id = (ends - 1) // block_rows
    cuts = np.flatnonzero(np.diff(block_id)) + 1
    bounds = np.concatenate(([0], cuts, [keep.size])).astype(np.int64)
    blocks = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sel = keep[a:b]  # positions in `chosen`
        block_pages = chosen[sel]
        block_lengths = lengths[sel]
        contiguous = bool(np.all(offsets[block_pages[1:]] == offsets[block_pages[:-1] + 1]))
        if contiguous:
            rows: slice | np.ndarray = slice(int(offsets[block_pages[0]]),
                                             int(offsets[block_pages[-1] + 1]))
        else:
            rows = page_rows(offsets, block_pages)
        if order is None:
            out: slice | np.ndarray = (
                slice(int(sel[0]), int(sel[-1]) + 1) if sel[-1] - sel[0] + 1 == sel.size
                else sel)
        else:
            out = order[sel]
        blocks.append(PageBlock(out, rows, block_lengths, _uniform(block_lengths)))
    return blocks


def stack_queries(
    queries: Sequence[np.ndarray], dim: int, dtype: type = np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack the queries that have vectors -> (stacked (q_total, d), starts (n_live,),
    live (n_live,) indices of those queries). An empty query scores 0 on every page."""
    mats = []
    for q in queries:
        q = np.asarray(q)
        if q.ndim != 2:
            raise RetrieverError(f"query vectors must be 2-D (n, d), got shape {q.shape}")
        if q.shape[1] != dim:
            raise RetrieverError(f"query dim {q.shape[1]} does not match stored dim {dim}")
        mats.append(q)
    sizes = np.array([m.shape[0] for m in mats], dtype=np.int64)  # (n_queries,)
    live = np.flatnonzero(sizes > 0)
    stacked = (
        np.concatenate([mats[i] for i in live], axis=0).astype(dtype, copy=False)
        if live.size else np.zeros((0, dim), dtype)
    )  # (q_total, d)
    starts = np.concatenate(([0], np.cumsum(sizes[live])[:-1])).astype(np.int64)
    return stacked, starts, live

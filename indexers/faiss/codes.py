"""Two-stage search on compact codes (int8 / binary) over the FAISS collection's pages.

With a quantized collection, stage 1 is code MaxSim from ``retriever.search.twostage`` (binary or
int8 codes, plus a few centroids per page for large collections) instead of a FAISS index,
and stage 2 is exact MaxSim on the full vectors, read from the memory-mapped segments for
the shortlisted pages only. The codes are derived from the full vectors: each segment's
are written beside it at commit (``segment_codes``), and a process assembles a
generation's code index from those files the first time it searches it (or encodes the
stored vectors of a segment that has none), then reuses it until the next commit. A commit
does not assemble them again: the next generation's view gets the previous one's codes
moved by what changed (``carry_codes``: pages removed are dropped, only the added pages are
encoded), as the LanceDB backend does.
"""

from __future__ import annotations

__all__ = ["carry_codes", "check_quantization", "code_search", "default_rerank"]

from pathlib import Path
from typing import Any

import numpy as np

from retriever.protocols import ScoredPage
from retriever.search.scoring import rank_pages
from retriever.search.scoring_torch import torch_available
from retriever.types import MultiVector

from . import segment_codes
from .state import LiveView


def check_quantization(name: str) -> str:
    from retriever.search.quantization import check_quantization as check

    return check(name)


def default_rerank(quantization: str) -> int:
    from retriever.search.twostage import default_rerank as rerank

    return rerank(quantization)


#: past this share of a generation's pages added since the last, build its codes afresh
_MAX_ADDED = 0.5


def _centroids_for(pages: int) -> int:
    from retriever.search.prefilter import DEFAULT_CENTROIDS
    from retriever.search.twostage import FULL_SCAN_PAGES

    # the centroid stage only runs past FULL_SCAN_PAGES pages: skip its k-means below
    return DEFAULT_CENTROIDS if pages > FULL_SCAN_PAGES else 0


#: pages gathered (as float32) and encoded at a time when codes are built from the stored
#: vectors: the host holds half a GB of them at most, never a whole generation (49 GB
#: at 100k ColPali pages)
_BUILD_PAGES = 1024


def _build_codes(view: LiveView, positions: np.ndarray, quantization: str) -> Any:
    """The codes (and centroids) of the pages at ``positions``, built chunk by chunk;
    codes and centroids are per vector and per page, so the result is the one-pass one."""
    from retriever.search.twostage import CodeIndex

    centroids = _centroids_for(len(view))
    index = None
    for start in range(0, max(positions.size, 1), _BUILD_PAGES):
        vectors, offsets = view.gather(positions[start:start + _BUILD_PAGES])
        part = CodeIndex.build(vectors, offsets, quantization, centroids=centroids)
        # appending with everything kept grows the arrays in place (amortized copies)
        index = part if index is None else index.updated(np.arange(index.n_pages), part)
    return index


def _code_index(view: LiveView, quantization: str, directory: Path | None = None) -> Any:
    """The view's code index, built once: from its segments' code files in ``directory``
    when they all have one (``segment_codes``), else from the stored vectors."""
    from retriever.search.twostage import CodeIndex

    def build() -> Any:
        if directory is not None:
            stored = segment_codes.stored_code_index(view, directory, quantization,
                                                     _centroids_for(len(view)) > 0)
            if stored is not None:
                return stored
        if view.has_exact():  # the float32 matrix is in memory already
            vectors, offsets = view.exact_matrix()  # (N, d), (P+1,)
            return CodeIndex.build(vectors, offsets, quantization,
                                   centroids=_centroids_for(len(view)))
        return _build_codes(view, np.arange(len(view)), quantization)

    return view.cached(("codes", quantization), build)


def carry_codes(old: LiveView, new: LiveView, quantization: str) -> bool:
    """Give ``new`` (the next generation's view) the codes ``old`` has built, moved by
    the commits between them; -> whether it did. Only when ``new`` lists ``old``'s
    surviving pages first, in their order, then pages ``old`` did not have (what appends,
    deletes and replacements leave; a compaction reorders, and is built afresh), and
    when the page count stays on the same side of the centroid stage's threshold."""
    key = ("codes", quantization)
    index = old.built(key)
    step = new.continuation(old) if index is not None and len(new) else None
    if step is None:
        return False
    kept, added = step
    if added.size > _MAX_ADDED * len(new):
        return False
    with_centroids = _centroids_for(len(new)) > 0
    if with_centroids != (index.centroid_offsets is not None):
        return False
    if added.size:
        part = _build_codes(new, added, quantization)  # the added pages only
    else:
        part = index.empty_like()
    new.seed(key, index.updated(kept, part))
    return True


def code_search(view: LiveView, queries: list[MultiVector], k: int, *, quantization: str,
                rerank: int, threads: int | None = None,
                directory: Path | None = None) -> list[list[ScoredPage]]:
    """Top ``k`` per query: code shortlist of ``rerank`` pages, then exact MaxSim."""
    from retriever.search.twostage import two_stage_search

    index = _code_index(view, quantization, directory)
    live = [q for q in queries if q.n]
    # the stored float16 for the torch kernel, which converts block by block; numpy's
    # float16 matmul is slow, so float32 for it
    stored = None if torch_available() else np.float32
    found = iter(two_stage_search(index, [q.vectors for q in live],
                                  lambda positions: view.gather(positions, dtype=stored),
                                  rerank=max(rerank, k), threads=threads))
    out: list[list[ScoredPage]] = []
    for q in queries:
        if not q.n:  # no query vectors: every page with vectors scores 0 (sum over nothing)
            pages = np.flatnonzero(view.counts > 0)
            scores = np.zeros(pages.size, np.float32)
        else:
            pages, scores = next(found)  # (r,), (r,) best first
        out.append(rank_pages(scores, view.keys[pages], k))
    return out

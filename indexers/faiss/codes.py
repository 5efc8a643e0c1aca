"""Two-stage search on compact codes (int8 / binary) over the FAISS collection's pages.

With a quantized collection, stage 1 is code MaxSim from ``retriever.search.twostage`` (binary or
int8 codes, plus a few centroids per page for large collections) instead of a FAISS index,
and stage 2 is exact MaxSim on the full vectors, read from the memory-mapped segments for
the shortlisted pages only. The collection keeps full vectors on disk either way, so the
codes are derived from them: built in memory the first time a generation is searched and
reused until the next commit.
"""

from __future__ import annotations

__all__ = ["check_quantization", "code_search", "default_rerank"]

from typing import Any

import numpy as np

from retriever.protocols import ScoredPage
from retriever.types import MultiVector

from .state import LiveView


def check_quantization(name: str) -> str:
    from retriever.search.quantization import check_quantization as check

    return check(name)


def default_rerank(quantization: str) -> int:
    from retriever.search.twostage import default_rerank as rerank

    return rerank(quantization)


def _code_index(view: LiveView, quantization: str) -> Any:
    from retriever.search.prefilter import DEFAULT_CENTROIDS
    from retriever.search.twostage import FULL_SCAN_PAGES, CodeIndex

    def build() -> Any:
        vectors, offsets = view.exact_matrix() if view.has_exact() else view.gather(
            np.arange(len(view)))  # (N, d) float32, (P+1,)
        # the centroid stage only runs past FULL_SCAN_PAGES pages: skip its k-means
        centroids = DEFAULT_CENTROIDS if len(view) > FULL_SCAN_PAGES else 0
        return CodeIndex.build(vectors, offsets, quantization, centroids=centroids)

    return view.cached(("codes", quantization), build)


def code_search(view: LiveView, queries: list[MultiVector], k: int, *, quantization: str,
                rerank: int, threads: int | None = None) -> list[list[ScoredPage]]:
    """Top ``k`` per query: code shortlist of ``rerank`` pages, then exact MaxSim."""
    from retriever.search.twostage import two_stage_search

    index = _code_index(view, quantization)
    live = [q for q in queries if q.n]
    found = iter(two_stage_search(index, [q.vectors for q in live], view.gather,
                                  rerank=max(rerank, k), threads=threads))
    out: list[list[ScoredPage]] = []
    for q in queries:
        if not q.n:  # no query vectors: every page with vectors scores 0 (sum over nothing)
            pages = np.flatnonzero(view.counts > 0)
            scores = np.zeros(pages.size, np.float32)
        else:
            pages, scores = next(found)  # (r,), (r,) best first
        ranked = sorted(zip(pages.tolist(), scores.tolist()),
                        key=lambda ps: (-ps[1], view.keys[ps[0]]))[:k]
        out.append([ScoredPage(str(view.keys[p]), float(s)) for p, s in ranked
                    if np.isfinite(s)])
    return out

"""Two-stage search: compact codes pick candidates, exact MaxSim on full vectors ranks them.

Stages, per query:

0. (large collections only) MaxSim against a few centroids per page
   (``retriever.search.prefilter``) keeps the best ``candidates`` pages: through a FAISS IVF
   index over all centroids, probed per query vector, when FAISS is installed and there
   are enough centroids (``retriever.search.centroid_ivf``: sublinear), else scored on
   every centroid's int8 codes (linear, as good as float16 for this stage);
1. MaxSim on the codes (binary or int8, ``retriever.search.quantization``) of those pages, or of
   every page when the collection is small, keeps the best ``rerank``;
2. exact float32 MaxSim on the full-precision vectors of those, fetched on demand (a
   float16 memmap, a LanceDB take): only ``rerank`` pages are ever read.

With ``rerank`` at least the number of pages, every page reaches stage 2 and the ranking
is exactly the exact search's. Codes and centroids live in memory; full vectors do not
have to.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_RERANK",
    "DEFAULT_CANDIDATES",
    "CodeIndex",
    "ArrayVectors",
    "FetchVectors",
    "default_candidates",
    "ivf_pool",
    "default_rerank",
    "two_stage_search",
    "best_pages",
]

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import RetrieverError
from .prefilter import DEFAULT_CENTROIDS, page_centroids
from .growable import Spare, append_rows
from .quantization import BinaryCodes, Int8Codes, PageCodes, check_quantization, encode_codes
from .ragged import check_offsets, page_rows
from .scoring import top_k
from .scoring_torch import exact_maxsim_many

#: pages reranked exactly per query, per code format; measured on the structured
#: benchmark (benchmarks/search.py) to keep recall@10 against exact search at 0.95 or more
DEFAULT_RERANK = {"binary": 128, "int8": 32}
#: pages kept by the centroid stage, at most. On the structured benchmark the exact top-10
#: was always within the best 512 of 100k pages by centroids, and within the best 128 of
#: 10k; the default grows with the collection (one page in 64, between 128 and 512)
#: because the code scoring of the candidates is the largest cost of a search
DEFAULT_CANDIDATES = 512
MIN_CANDIDATES = 128
#: the IVF pool keeps growing past that cap, up to this many pages: at 100k pages a pool
#: of 4,096 lost the exact top 10 for 6% of queries (recall@10 0.94) and 8,192 for 1%
#: (0.99), whether 512 or 1,024 of the pool went on to the codes (32 queries)
MAX_IVF_POOL = 8192
#: up to this many pages the codes of every page are scored (no centroid stage): at 1k
#: pages a full code scan took longer than exact search on a CPU without VNNI
FULL_SCAN_PAGES = 512
#: pages the IVF coarse stage hands to the exact centroid MaxSim, per candidate before
#: the candidate cap (``ivf_pool``): 8 kept recall@10 at 1.00 at 10k pages where 2 and 4
#: lost pages (benchmarks/search.py)
IVF_POOL = 8

#: how stage 0 runs: "auto" (IVF when FAISS is installed and the centroids are many),
#: "ivf", or "scan" (every centroid)
COARSE_MODES = ("auto", "ivf", "scan")

#: fetch(pages) -> (vectors (R, d) of those pages in the order given, offsets (m+1,))
FetchVectors = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _one_in_64(n_pages: int) -> int:
    # the collection-size rule both the candidates and the IVF pool follow, before caps
    return max(n_pages // 64, MIN_CANDIDATES)


def default_candidates(n_pages: int) -> int:
    return int(min(_one_in_64(n_pages), DEFAULT_CANDIDATES))


def ivf_pool(n_pages: int, wide: int) -> int:
    """Pages the IVF hands to the exact centroid MaxSim when ``wide`` are kept: the pool
    follows the collection (``IVF_POOL`` per page in 64) past the candidate cap, because
    the pool, not the candidate count, decided recall at 100k pages."""
    return int(max(IVF_POOL * wide, min(IVF_POOL * _one_in_64(n_pages), MAX_IVF_POOL)))


def default_rerank(quantization: str) -> int:
    return DEFAULT_RERANK.get(check_quantization(quantization), 0)


def best_pages(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best finite scores, best first, ties by lower index."""
    return top_k(scores, n)[0]


@dataclass
class ArrayVectors:
    """Full vectors of every page in one (N, d) array or memmap: the simplest fetch."""

    vectors: np.ndarray
    offsets: np.ndarray

    def __call__(self, pages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pages = np.asarray(pages, dtype=np.int64)
        lengths = self.offsets[pages + 1] - self.offsets[pages]  # (m,)
        sub_offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        return np.asarray(self.vectors[page_rows(self.offsets, pages)]), sub_offsets


@dataclass
class CodeIndex:
    """What stays in memory for two-stage search: codes (+ page centroids)."""

    codes: PageCodes
    offsets: np.ndarray  # (P+1,) rows of each page in ``codes``
    #: (C, d) page centroids, given to build from: held only as their int8 codes, which
    #: both coarse stages read (a float16 copy beside them was 4 KB of a ColPali page's
    #: 26), so this is ``None`` once the index is made; ``centroid_vectors()`` decodes them
    centroids: np.ndarray | None = None
    centroid_offsets: np.ndarray | None = None  # (P+1,)
    coarse: str = "auto"
    #: int8 codes of the centroids, when the caller has them (instead of ``centroids``)
    coarse_codes: Int8Codes | None = field(default=None, repr=False)
    _ivf: Any = field(default=None, init=False, repr=False)
    _spares: dict[str, Spare] = field(default_factory=dict, init=False, repr=False)
    _ivf_lock: Any = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.coarse not in COARSE_MODES:
            raise RetrieverError(f"unknown coarse stage {self.coarse!r}",
                                 hint=f"use one of {COARSE_MODES}")
        self.offsets = check_offsets(self.offsets, self.codes.n)
        given = self.centroids is not None or self.coarse_codes is not None
        if given != (self.centroid_offsets is not None):
            raise RetrieverError("centroids and centroid_offsets come together")
        if self.centroid_offsets is not None:
            self._coarse: Int8Codes | None = (self.coarse_codes if self.coarse_codes is not None
                                              else Int8Codes.encode(self.centroids))
            self.centroids = self.coarse_codes = None  # held once, as _coarse
            self.centroid_offsets = check_offsets(self.centroid_offsets, self._coarse.n)
            if self.centroid_offsets.size != self.offsets.size:
                raise RetrieverError("centroid offsets do not cover the same pages as codes")
        else:
            self._coarse = None

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        offsets: np.ndarray,
        quantization: str,
        *,
        centroids: int = DEFAULT_CENTROIDS,
        binary_mode: str = "asymmetric",
    ) -> CodeIndex:
        """Codes of ``vectors`` (N, d), and ``centroids`` per page (0: no coarse stage)."""
        codes = encode_codes(quantization, vectors, binary_mode=binary_mode)
        if centroids <= 0:
            return cls(codes, offsets)
        cents, cent_offsets = page_centroids(vectors, offsets, centroids)
        return cls(codes, offsets, cents, cent_offsets)

    def empty_like(self) -> CodeIndex:
        """No pages, in this index's format (codes, and centroids if it has them): the
        ``new`` of an ``updated`` that only removes pages."""
        codes: Any = self.codes
        if isinstance(codes, BinaryCodes):
            codes = BinaryCodes(np.zeros((0, codes.bits.shape[1]), np.uint8), codes.dim,
                                codes.mode)
        else:
            codes = Int8Codes(np.zeros((0, codes.dim), np.int8), np.zeros(0, np.float32))
        if self.centroid_offsets is None:
            return CodeIndex(codes, np.zeros(1, np.int64))
        cents = np.zeros((0, codes.dim), np.float16)
        return CodeIndex(codes, np.zeros(1, np.int64), cents, np.zeros(1, np.int64))

    @property
    def n_pages(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def nbytes(self) -> int:
        extra = 0 if self._coarse is None else self._coarse.nbytes
        ivf = 0 if self._ivf is None else self._ivf.nbytes
        return int(self.codes.nbytes + extra + ivf + self.offsets.nbytes)

    def coarse_stage(self) -> str:
        """What stage 0 runs on at the default candidates: "ivf", "scan", or "none" (no
        centroids, or few enough pages that every page's codes are scored)."""
        if self._coarse is None or self._full_scan(default_candidates(self.n_pages)):
            return "none"
        if self.coarse == "scan":
            return "scan"
        from .centroid_ivf import MIN_CENTROIDS, faiss_available

        if self.coarse == "ivf" or (faiss_available() and self._coarse.n >= MIN_CENTROIDS):
            return "ivf"
        return "scan"

    def updated(self, keep: np.ndarray, new: CodeIndex) -> CodeIndex:
        """This index's pages ``keep`` (ascending positions), then every page of ``new``:
        what a commit that removed and added pages leaves. When nothing was removed the
        new rows are appended in place (``retriever.search.growable``), so the cost is that of
        the new pages only; removals copy the kept rows once. A built IVF coarse stage is
        carried over (the new centroids are added to it)."""
        keep = np.asarray(keep, dtype=np.int64)
        everything = keep.size == self.n_pages
        spares: dict[str, Spare] = {}

        def join(name: str, head: np.ndarray, tail: np.ndarray, rows: np.ndarray | None
                 ) -> np.ndarray:
            if rows is None:
                joined, spares[name] = append_rows(head, self._spares.get(name), tail)
                return joined
            return np.concatenate([head[rows], tail])

        rows = None if everything else page_rows(self.offsets, keep)
        if isinstance(self.codes, BinaryCodes):
            codes: PageCodes = BinaryCodes(join("bits", self.codes.bits, new.codes.bits, rows),
                                           self.codes.dim, self.codes.mode)
        else:
            codes = Int8Codes(join("values", self.codes.values, new.codes.values, rows),
                              join("scales", self.codes.scales, new.codes.scales, rows))
        lengths = np.concatenate([np.diff(self.offsets)[keep], np.diff(new.offsets)])
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        if self._coarse is None or new._coarse is None:
            out = CodeIndex(codes, offsets, coarse=self.coarse)
            out._spares = spares
            return out
        cent_rows = None if everything else page_rows(self.centroid_offsets, keep)
        coarse_codes = Int8Codes(
            join("coarse_values", self._coarse.values, new._coarse.values, cent_rows),
            join("coarse_scales", self._coarse.scales, new._coarse.scales, cent_rows))
        cent_lengths = np.concatenate([np.diff(self.centroid_offsets)[keep],
                                       np.diff(new.centroid_offsets)])
        cent_offsets = np.concatenate(([0], np.cumsum(cent_lengths))).astype(np.int64)
        out = CodeIndex(codes, offsets, None, cent_offsets, coarse=self.coarse,
                        coarse_codes=coarse_codes)
        out._spares = spares
        if self._ivf is not None:
            out._ivf = self._ivf.updated(keep, new.centroid_vectors(), new.centroid_offsets)
        return out

    def centroid_vectors(self) -> np.ndarray | None:
        """(C, d) float32 centroids as the coarse stages see them (decoded int8 codes)."""
        return None if self._coarse is None else self._coarse.decode()

    def _full_scan(self, wide: int) -> bool:
        return self.n_pages <= max(2 * wide, FULL_SCAN_PAGES)

    def centroid_ivf(self) -> Any:
        """The IVF over the centroids, built on first use (seconds at 100k pages)."""
        with self._ivf_lock:
            if self._ivf is None:
                from .centroid_ivf import CentroidIVF

                self._ivf = CentroidIVF.build(self.centroid_vectors(), self.centroid_offsets)
            return self._ivf

    def shortlist(
        self,
        queries: Sequence[np.ndarray],
        n: int,
        *,
        candidates: int | None = None,
        backend: str = "auto",
        threads: int | None = None,
    ) -> list[np.ndarray]:
        """Stages 0-1: the ``n`` best pages per query by code MaxSim, best first."""
        queries = list(queries)
        if not queries:
            return []
        wide = max(candidates or default_candidates(self.n_pages), n)
        if self._coarse is None or self._full_scan(wide):
            # one pass over every page's codes for all queries together
            scores = self.codes.score_many(queries, self.offsets, backend=backend,
                                           threads=threads)  # (n_queries, P)
            return [best_pages(row, n) for row in scores]
        if self.coarse_stage() == "ivf":
            # the IVF finds pages near some query vector; its imputed scores are rough, so
            # the exact centroid MaxSim of those pages only picks the ``wide`` best
            found = self.centroid_ivf().candidates(queries, ivf_pool(self.n_pages, wide))
            wide_pages = []
            for query, pool in zip(queries, found):
                pool = np.sort(pool)
                row = self._coarse.score_many([query], self.centroid_offsets, pages=pool,
                                              backend=backend, threads=threads)[0]
                wide_pages.append(pool[best_pages(row, wide)])
        else:
            coarse = self._coarse.score_many(queries, self.centroid_offsets,
                                             backend=backend, threads=threads)  # (nq, P)
            wide_pages = [best_pages(row, wide) for row in coarse]
        out = []
        for query, pages in zip(queries, wide_pages):
            fine = self.codes.score_many([query], self.offsets, pages=pages,
                                         backend=backend, threads=threads)[0]
            out.append(pages[best_pages(fine, n)])
        return out


def two_stage_search(
    index: CodeIndex,
    queries: Sequence[np.ndarray],
    fetch: FetchVectors,
    *,
    rerank: int,
    candidates: int | None = None,
    backend: str = "auto",
    threads: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query: (pages (r,), exact scores (r,)) of the ``rerank`` shortlisted pages,
    best first, ties by page index. Callers take their top ``k`` from it (``rerank >= k``).
    """
    if rerank < 1:
        raise RetrieverError(f"rerank must be at least 1, got {rerank}")
    queries = list(queries)
    shortlists = index.shortlist(queries, rerank, candidates=candidates, backend=backend,
                                 threads=threads)
    if not queries:
        return []
    # fetch the union once: batched queries often share candidates
    union = np.unique(np.concatenate(shortlists)) if shortlists else np.zeros(0, np.int64)
    vectors, sub_offsets = fetch(union)  # rows of the union's pages, in union order
    results = []
    for query, pages in zip(queries, shortlists):
        local = np.searchsorted(union, pages)  # (r,) positions in the fetched block
        exact = exact_maxsim_many([query], vectors, sub_offsets, pages=local,
                                  backend=backend, threads=threads)[0]  # (r,)
        order = best_pages(exact, exact.size)
        results.append((pages[order], exact[order]))
    return results

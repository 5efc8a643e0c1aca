"""A sublinear coarse stage: FAISS IVF over every page's centroids, probed per query token.

The brute-force coarse stage (``retriever.search.prefilter`` centroids scored by MaxSim against
every page) costs ``query vectors x centroids x d`` per query: at 100k ColPali pages with
16 centroids each that is 1.6M centroids, about 13 GFLOP, and it grows with the
collection. Here the centroids of all pages go into one FAISS IVF index (inner product,
float16 lists); each query vector looks up its ``token_k`` nearest centroids in ``nprobe``
lists, which touches a few percent of them whatever the collection size.

A page's coarse score is its centroid MaxSim over what was found, missing similarities
imputed (``retriever.search.imputed``); pages found by no query vector are not candidates.

FAISS is optional (the ``faiss`` extra, installed by default): without it the coarse stage
stays the brute-force scan.
"""

from __future__ import annotations

__all__ = ["CentroidIVF", "SearchAddLock", "faiss_available", "DEFAULT_TOKEN_K",
           "DEFAULT_NPROBE", "MIN_CENTROIDS"]

import contextlib
import importlib.util
import math
import os
import threading
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from ..errors import RetrieverError
from .imputed import imputed_page_scores

#: nearest centroids kept per query vector, and inverted lists probed to find them. At
#: 100k structured pages (1.6M centroids) 256 per query vector let 9% of the exact top-10
#: fall out of the pool (recall@10 0.91 through the collection); 512 and 1024 kept all of
#: it (benchmarks/search.py --big-collection). Not yet checked on real vectors.
DEFAULT_TOKEN_K = 512
DEFAULT_NPROBE = 16
#: below this many centroids a brute-force scan is as fast as probing lists
MIN_CENTROIDS = 32_768
#: past this share of removed pages' centroids still in the lists, retrain from scratch
MAX_TOMBSTONES = 0.25
_TRAIN_PER_LIST = 40  # k-means sample per list: FAISS warns below 39
_KMEANS_ITERATIONS = 10


@lru_cache(maxsize=1)
def faiss_available() -> bool:
    return importlib.util.find_spec("faiss") is not None


@lru_cache(maxsize=1)
def _faiss() -> Any:
    """faiss, with its OpenMP team no larger than ``OMP_THREAD_LIMIT`` allows: with the
    limit below FAISS's thread count, IVF adds hung here (libgomp), so ask for no more.
    Done once per process, not per search."""
    import faiss

    limit = os.environ.get("OMP_THREAD_LIMIT", "").strip()
    if limit.isdigit() and 0 < int(limit) < faiss.omp_get_max_threads():
        faiss.omp_set_num_threads(int(limit))
    return faiss


class SearchAddLock:
    """Any number of searches at once, or one addition alone.

    FAISS indexes may be searched from several threads at once but not while an addition
    runs; a plain lock would queue every concurrent search's IVF stage behind the others.
    A waiting addition goes first: searches that arrive after it wait, so a steady stream
    of searches cannot hold off a commit for ever.
    """

    def __init__(self) -> None:
        self._state = threading.Condition()
        self._searching = 0
        self._adding = False
        self._waiting_adds = 0

    @contextlib.contextmanager
    def searching(self) -> Iterator[None]:
        with self._state:
            while self._adding or self._waiting_adds:
                self._state.wait()
            self._searching += 1
        try:
            yield
        finally:
            with self._state:
                self._searching -= 1
                if self._searching == 0:
                    self._state.notify_all()

    @contextlib.contextmanager
    def adding(self) -> Iterator[None]:
        with self._state:
            self._waiting_adds += 1
            try:
                while self._adding or self._searching:
                    self._state.wait()
            finally:
                self._waiting_adds -= 1
            self._adding = True
        try:
            yield
        finally:
            with self._state:
                self._adding = False
                self._state.notify_all()


def _nlist_for(n_centroids: int) -> int:
    # about sqrt(C) lists: trains in seconds at 1.6M centroids, lists of ~sqrt(C) each
    return int(min(max(16, round(math.sqrt(n_centroids))), 65_536))


class CentroidIVF:
    """Page centroids in one FAISS IVF index; ``centroid_pages[c]`` is the page of id c
    (``-1`` once that page is gone).

    After a commit, ``updated`` adds the new pages' centroids to the same FAISS index and
    returns a new mapping; snapshots taken before it keep their own mapping and ignore
    ids they do not know, so searches on an older snapshot stay correct. The FAISS index
    is shared between snapshots: its searches run together, its additions alone
    (``SearchAddLock``).
    """

    def __init__(self, index: Any, centroid_pages: np.ndarray, n_pages: int,
                 lock: SearchAddLock | None = None) -> None:
        self.index = index
        self.centroid_pages = np.asarray(centroid_pages, dtype=np.int64)  # (C,)
        self.n_pages = int(n_pages)
        self._lock = lock or SearchAddLock()

    @classmethod
    def build(cls, centroids: np.ndarray, centroid_offsets: np.ndarray, *,
              nlist: int | None = None, seed: int = 0) -> CentroidIVF:
        """Train and fill the index from ``centroids`` (C, d) with page ``offsets`` (P+1,)."""
        faiss = _faiss()

        cents = np.ascontiguousarray(centroids, dtype=np.float32)  # (C, d)
        n, dim = cents.shape
        if n == 0:
            raise RetrieverError("no centroids to index")
        nlist = min(nlist or _nlist_for(n), n)
        quantizer = faiss.IndexFlatIP(dim)
        # the lists hold float16 codes: the centroids are stored as float16 anyway, so
        # nothing is lost, and RAM per centroid halves against IndexIVFFlat
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist,
                                              faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = _KMEANS_ITERATIONS
        index.cp.seed = seed
        sample = min(n, nlist * _TRAIN_PER_LIST)
        # an even stride over all pages, not the first ones: pages arrive document by
        # document, and the lists must cover every kind of page
        train = cents[np.linspace(0, n - 1, sample).astype(np.int64)]
        index.train(train)
        index.add(cents)  # ids are row numbers
        offsets = np.asarray(centroid_offsets, dtype=np.int64)
        pages = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))  # (C,)
        return cls(index, pages, offsets.size - 1)

    def updated(self, keep: np.ndarray, centroids: np.ndarray, centroid_offsets: np.ndarray
                ) -> CentroidIVF | None:
        """The pages ``keep`` (positions here) renumbered 0.., then new pages with
        ``centroids`` (C', d) and offsets (P'+1,). ``None`` when so many removed pages'
        centroids would remain that the index is better retrained (it is, on next use)."""
        keep = np.asarray(keep, dtype=np.int64)
        renumber = np.full(self.n_pages, -1, np.int64)
        renumber[keep] = np.arange(keep.size)
        known = self.centroid_pages >= 0
        old = np.where(known, renumber[self.centroid_pages.clip(min=0)], -1)  # (C,)
        offsets = np.asarray(centroid_offsets, dtype=np.int64)
        new = keep.size + np.repeat(np.arange(offsets.size - 1), np.diff(offsets))  # (C',)
        pages = np.concatenate([old, new])
        if (pages < 0).mean() > MAX_TOMBSTONES:
            return None
        with self._lock.adding():
            start = self.index.ntotal  # ids are never reused, so old snapshots stay valid
            if start != self.centroid_pages.size:  # another snapshot added first
                return None
            if new.size:
                ids = np.arange(start, start + new.size, dtype=np.int64)
                self.index.add_with_ids(np.ascontiguousarray(centroids, dtype=np.float32),
                                        ids)
        return CentroidIVF(self.index, pages, keep.size + offsets.size - 1, self._lock)

    @property
    def nbytes(self) -> int:
        # float16 codes + ids in the lists, the list centroids, the page of each centroid
        d = self.index.d
        return int(self.index.ntotal * (2 * d + 8) + self.index.nlist * 4 * d
                   + self.centroid_pages.nbytes)

    def candidates(self, queries: Sequence[np.ndarray], n: int, *,
                   token_k: int = DEFAULT_TOKEN_K, nprobe: int = DEFAULT_NPROBE
                   ) -> list[np.ndarray]:
        """Per query, up to ``n`` pages by coarse score, best first (ties: lower page)."""
        faiss = _faiss()

        queries = [np.asarray(q, dtype=np.float32) for q in queries]
        if not queries:
            return []
        sizes = [q.shape[0] for q in queries]
        stacked = np.ascontiguousarray(np.concatenate(queries))  # (q_total, d)
        token_k = min(token_k, self.index.ntotal)
        params = faiss.SearchParametersIVF(nprobe=min(nprobe, self.index.nlist))
        with self._lock.searching():
            sims, ids = self.index.search(stacked, token_k, params=params)  # (q_total, t)
        out, start = [], 0
        for size in sizes:
            out.append(self._rank(sims[start : start + size], ids[start : start + size], n))
            start += size
        return out

    def _rank(self, sims: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
        """One query's hits (q, token_k) -> its ``n`` best pages by imputed centroid MaxSim."""
        # ids added after this snapshot (or of no page) are not ours: no hit
        known = (ids >= 0) & (ids < self.centroid_pages.size)
        pages = np.where(known, self.centroid_pages[ids.clip(0, self.centroid_pages.size - 1)],
                         -1)  # (q, t)
        cand, scores = imputed_page_scores(sims, pages)  # (m,), (m,)
        order = np.lexsort((cand, -scores.astype(np.float64)))[:n]
        return cand[order]

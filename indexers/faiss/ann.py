"""The FAISS side: one index over every stored vector, whose ids say which page it is on.

A vector's FAISS id is ``page_id << 20 | row`` (row = its position on the page), so a hit
names its page without a lookup table and a page's vectors are a known id range. For a
single-vector collection the vectors are the pages; for a multi-vector one they are tokens,
and the index only proposes candidate pages that are then scored exactly (``search.py``).

Index types (all inner product on L2-normalized vectors, i.e. cosine):

- ``flat``: ``IndexIDMap2(IndexFlatIP)``, exact; deletion by ``remove_ids``.
- ``hnsw``: ``IndexIDMap2(IndexHNSWFlat)``, M=32, efConstruction=64, efSearch=max(64, k).
  HNSW cannot remove vectors: deleted pages become *tombstones*, filtered out of every
  search with an ``IDSelectorNot``; when they pass 20% of the index it is rebuilt without
  them (compaction).
- ``ivf``: ``IndexIVFFlat``, ``ivfpq``: ``IndexIVFPQ`` (m = dim/4 sub-quantizers when dim
  allows, 8 bits once there are ~10k vectors). nlist = min(4·sqrt(n), n/39); nprobe
  defaults to max(16, nlist/4) for single-vector pages, ``MULTI_NPROBE`` (16) per query
  vector for multi-vector ones. IVF ids are native; deletion by ``remove_ids``. The
  coarse quantizer is retrained (a rebuild) once the index holds 4x what it was trained on.
  Stage 2 rescoring is exact, so recall is set by probing, not by PQ: on embeddings, which
  cluster, nlist/4 is generous; on unstructured Gaussian data recall@10 >= 0.9 needs about
  nlist/2 (measured: 0.95 at d=32, n=3000; 0.90 at d=64, n=5000).

``auto`` (the default) chooses when the index is (re)built: single-vector collections use
flat up to 20k pages, HNSW up to 1M, IVF-PQ beyond; multi-vector collections use exact
MaxSim (no index) up to 1M vectors and a token IVF-PQ beyond.
"""

from __future__ import annotations

__all__ = [
    "INDEX_TYPES",
    "MULTI_NPROBE",
    "MAX_VECTORS_PER_PAGE",
    "TokenIndex",
    "auto_type",
    "default_nprobe",
    "nlist_for",
    "token_ids",
]

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from retriever.errors import RetrieverError

from . import files

INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq")
TOKEN_BITS = 20
MAX_VECTORS_PER_PAGE = 1 << TOKEN_BITS
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 64
#: IVF lists probed per query *vector* in multi-vector collections: a page is found through
#: any of its many vectors, so few probes suffice (2000 ColPali-shaped pages, nlist 5733:
#: nprobe 16 finds the exact top 10 with 256 candidates, 3.6x faster than exact MaxSim;
#: nlist/4 was slower than exact)
MULTI_NPROBE = 16
_TRAINED = ("ivf", "ivfpq")
#: below this many vectors a trained index is not worth it; a flat one stands in
_MIN_TRAIN = 64
_RETRAIN_GROWTH = 4
_MAX_TOMBSTONE_FRACTION = 0.2
#: auto choice: single-vector pages; multi-vector tokens (None: exact MaxSim, no index)
_SINGLE_FLAT_MAX = 20_000
_SINGLE_HNSW_MAX = 1_000_000
_MULTI_EXACT_MAX = 1_000_000


def auto_type(kind: str, n_vectors: int) -> str | None:
    """The index type for a collection of this size; None means exact MaxSim, no index."""
    if kind == "single":
        if n_vectors <= _SINGLE_FLAT_MAX:
            return "flat"
        return "hnsw" if n_vectors <= _SINGLE_HNSW_MAX else "ivfpq"
    # scoring every page exactly reads each vector once per query, as a flat token index
    # would, so an index only pays off once candidates cut the reading by a lot; IVF-PQ
    # rather than IVF-Flat, which would hold a second, float32 copy of every vector in RAM
    # (benchmarks/faiss_search.py, 2000 pages: both find the exact top 10, 2.6-5x faster)
    return None if n_vectors <= _MULTI_EXACT_MAX else "ivfpq"


def token_ids(page_ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """FAISS ids of the vectors of pages ``page_ids`` with ``counts`` vectors each."""
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))  # (P,)
    rows = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
    return (np.repeat(np.asarray(page_ids, np.int64), counts) << TOKEN_BITS) | rows


def nlist_for(n: int) -> int:
    """IVF lists for ``n`` vectors: 4·sqrt(n), but at least 39 training vectors per list."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def default_nprobe(nlist: int) -> int:
    return max(1, min(nlist, max(16, nlist // 4)))


def _pq_shape(dim: int, n: int) -> tuple[int, int]:
    """(sub-quantizers, bits): 4 dims per code byte where dim allows; fewer bits when small."""
    m = next((dim // s for s in (4, 2, 8, 1) if dim % s == 0), dim)
    nbits = max(1, min(8, int(math.log2(max(n / 39, 2)))))
    return m, nbits


def _new_index(kind: str, dim: int, n: int) -> Any:
    import faiss

    ip = faiss.METRIC_INNER_PRODUCT
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, ip)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return faiss.IndexIDMap2(hnsw)
    quantizer = faiss.IndexFlatIP(dim)
    nlist = nlist_for(n)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, ip)
    else:
        m, nbits = _pq_shape(dim, n)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, ip)
        index.pq.cp.min_points_per_centroid = 1  # sizes are chosen above; no stderr noise
    index.cp.min_points_per_centroid = 1
    index.cp.niter = 10  # faiss's 25 k-means rounds cost minutes at millions of vectors
    # the faiss wrappers keep ``quantizer`` referenced by ``index`` (no own_fields needed)
    return index


class TokenIndex:
    """A FAISS index plus which pages it holds (``page id -> vector count``)."""

    def __init__(self, index: Any, kind: str, pages: dict[int, int], trained_on: int = 0):
        self.index = index
        self.kind = kind
        self.pages = pages  # every page whose vectors are in the index, tombstoned included
        self.dead: set[int] = set()  # tombstoned pages (HNSW only)
        self.trained_on = trained_on
        self._dead_tokens = 0
        self._selector: Any = None  # (IDSelectorNot, IDSelectorBatch), kept alive together

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, kind: str, dim: int, page_ids: np.ndarray, counts: np.ndarray,
              vectors: np.ndarray) -> TokenIndex:
        """A fresh index of ``kind`` over ``vectors`` (N, dim) float32 of those pages."""
        if kind not in INDEX_TYPES:
            raise RetrieverError(f"unknown FAISS index type {kind!r}")
        n = int(vectors.shape[0])
        if kind in _TRAINED and n < _MIN_TRAIN:
            kind = "flat"  # too little to train on; rebuilt as asked once there is more
        index = _new_index(kind, dim, n)
        trained_on = 0
        if kind in _TRAINED:
            index.train(vectors)  # faiss subsamples large training sets itself
            trained_on = n
        out = cls(index, kind, {}, trained_on)
        out.add(page_ids, counts, vectors)
        return out

    def add(self, page_ids: np.ndarray, counts: np.ndarray, vectors: np.ndarray) -> None:
        if vectors.shape[0]:
            ids = token_ids(page_ids, counts)  # (N,)
            self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)
        self.pages.update(zip(np.asarray(page_ids).tolist(), np.asarray(counts).tolist()))

    def drop(self, page_ids: Iterable[int]) -> None:
        """Take pages out of search: removed from the index, or tombstoned for HNSW."""
        import faiss

        gone = [p for p in page_ids if p in self.pages and p not in self.dead]
        if not gone:
            return
        counts = np.array([self.pages[p] for p in gone], dtype=np.int64)
        if self.kind == "hnsw":
            self.dead.update(gone)
            self._dead_tokens += int(counts.sum())
            self._selector = None
            return
        ids = token_ids(np.array(gone, np.int64), counts)
        if ids.size:
            self.index.remove_ids(faiss.IDSelectorBatch(ids))
        for p in gone:
            del self.pages[p]

    def needs_rebuild(self, wanted: str) -> bool:
        """Rebuild when another type is wanted, IVF outgrew its training, or tombstones pile up."""
        if self.kind != wanted:
            return True
        if self.kind in _TRAINED and self.ntotal > _RETRAIN_GROWTH * max(self.trained_on, 1):
            return True
        return self._dead_tokens > _MAX_TOMBSTONE_FRACTION * max(self.ntotal, 1)

    def _params(self, k: int, nprobe: int | None, ef_search: int | None) -> Any:
        import faiss

        if self.kind in _TRAINED:
            nlist = int(self.index.nlist)
            return faiss.SearchParametersIVF(nprobe=min(nlist, nprobe or default_nprobe(nlist)))
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(ef_search or HNSW_EF_SEARCH, k))
            if self.dead:
                if self._selector is None:
                    dead = np.array(sorted(self.dead), np.int64)
                    batch = faiss.IDSelectorBatch(
                        token_ids(dead, np.array([self.pages[p] for p in dead.tolist()])))
                    self._selector = (faiss.IDSelectorNot(batch), batch)
                params.sel = self._selector[0]
            return params
        return None

    def search(self, queries: np.ndarray, k: int, *, nprobe: int | None = None,
               ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` live vectors per query row -> (sims (q, k) float32, page ids (q, k)).

        Missing results (fewer than ``k`` live vectors) have page id -1.
        """
        queries = np.ascontiguousarray(queries, np.float32)  # (q, dim)
        k = max(1, min(k, self.ntotal))
        params = self._params(k, nprobe, ef_search)
        sims, ids = self.index.search(queries, k, params=params)  # (q, k) each
        pages = np.where(ids >= 0, ids >> TOKEN_BITS, -1)  # (q, k)
        return sims, pages

    # -- persistence --------------------------------------------------------------------

    def save(self, directory: Path, number: int) -> dict[str, Any]:
        """Write ``index-N.faiss`` and its page table; the caller commits them."""
        name = f"index-{number:08d}"
        files.write_faiss_index(directory / f"{name}.faiss", self.index)
        table = np.array(sorted(self.pages.items()), dtype=np.int64).reshape(-1, 2)  # (P, 2)
        files.write_npy(directory / f"{name}.pages.npy", table)
        return {"file": f"{name}.faiss", "pages": f"{name}.pages.npy", "type": self.kind,
                "trained_on": self.trained_on}

    @classmethod
    def load(cls, directory: Path, entry: dict[str, Any]) -> TokenIndex:
        index = files.read_faiss_index(directory / entry["file"])
        table = files.load_npy(directory / entry["pages"]).reshape(-1, 2)  # (P, 2)
        pages = dict(zip(table[:, 0].tolist(), table[:, 1].tolist()))
        return cls(index, str(entry["type"]), pages, int(entry.get("trained_on", 0)))

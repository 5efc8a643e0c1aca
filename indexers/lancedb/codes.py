"""Quantized LanceDB collections: code columns, the code cache and two-stage search.

A collection created with ``quantization`` "binary" or "int8" keeps, next to the full
vectors, per page:

- ``codes``: binary ``list<fixed_size_list<uint8, d/8>>`` (sign bits) or int8
  ``list<fixed_size_list<int8, d>>`` with ``code_scales`` ``list<float32>`` (one scale per
  vector);
- ``centroids``: ``list<fixed_size_list<float16, d>>``, a few k-means centroids of the
  page's vectors for the coarse stage of large collections.

Codes are computed once, when pages are written. Searches hold only codes and centroids in
memory (about 20 KB per ColPali page with binary codes, against 527 KB for float32
vectors) and read the full vectors of the shortlisted pages from the table by row id.
"""

from __future__ import annotations

__all__ = ["CODE_COLUMNS", "code_fields", "code_columns", "CodeCache", "CodeSearcher",
           "load_code_cache", "refresh_code_cache", "fetch_vectors", "code_search",
           "StaleCacheError"]

import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from retriever.errors import RetrieverError
from retriever.search.prefilter import DEFAULT_CENTROIDS, page_centroids
from retriever.protocols import ScoredPage
from retriever.search.quantization import BinaryCodes, Int8Codes, check_quantization
from retriever.search.ragged import page_rows
from retriever.search.twostage import CodeIndex
from retriever.types import MultiVector

from .arrow import nested_vectors_to_numpy

CODE_COLUMNS = ("codes", "code_scales", "centroids")


class StaleCacheError(RetrieverError):
    """The table changed under the cache (another writer): reload and search again."""


def code_fields(quantization: str, dim: int) -> list[pa.Field]:
    """Extra schema fields of a collection stored with ``quantization``."""
    if check_quantization(quantization) == "none":
        return []
    if quantization == "binary":
        fields = [pa.field("codes", pa.list_(pa.list_(pa.uint8(), (dim + 7) // 8)),
                           nullable=False)]
    else:
        fields = [pa.field("codes", pa.list_(pa.list_(pa.int8(), dim)), nullable=False),
                  pa.field("code_scales", pa.list_(pa.float32()), nullable=False)]
    fields.append(pa.field("centroids", pa.list_(pa.list_(pa.float16(), dim)),
                           nullable=False))
    return fields


def _nested(flat: np.ndarray, offsets: np.ndarray, value_type: pa.DataType) -> pa.ListArray:
    """(N, w) rows + page offsets (P+1,) -> list<fixed_size_list<value_type, w>>."""
    inner = pa.FixedSizeListArray.from_arrays(
        pa.array(flat.reshape(-1), type=value_type), flat.shape[1])
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32), pa.int32()), inner)


def code_columns(schema: pa.Schema, vectors: np.ndarray, lengths: list[int]) -> list[pa.Array]:
    """The code columns ``schema`` asks for, computed from the stored vectors (N, d)."""
    names = set(schema.names)
    if "codes" not in names:
        return []
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)  # (P+1,)
    columns = []
    if "code_scales" in names:
        codes = Int8Codes.encode(vectors)
        columns.append(_nested(codes.values, offsets, pa.int8()))
        columns.append(pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                                pa.array(codes.scales, pa.float32())))
    else:
        bits = BinaryCodes.encode(vectors).bits  # (N, d/8)
        columns.append(_nested(bits, offsets, pa.uint8()))
    cents, cent_offsets = page_centroids(vectors, offsets, DEFAULT_CENTROIDS)
    columns.append(_nested(cents, cent_offsets, pa.float16()))
    return columns


@dataclass(frozen=True)
class CodeCache:
    """Codes and centroids of every page, as of one table version."""

    version: int
    keys: np.ndarray  # (P,) str, row order of the scan
    row_ids: np.ndarray  # (P,) uint64 LanceDB row ids, to take full vectors
    index: CodeIndex

    @property
    def nbytes(self) -> int:
        return int(self.index.nbytes + self.row_ids.nbytes)


def _code_columns(quantization: str) -> list[str]:
    return ["key", "codes", "centroids"] + (["code_scales"] if quantization == "int8" else [])


def _index_of(data: Any, quantization: str, dim: int, binary_mode: str) -> CodeIndex:
    """Codes and centroids of the rows of an Arrow table (the columns above)."""
    values, offsets = nested_vectors_to_numpy(data.column("codes"))
    if quantization == "int8":
        scales = data.column("code_scales").combine_chunks().flatten()
        codes: Any = Int8Codes(values.astype(np.int8, copy=False),
                               scales.to_numpy(zero_copy_only=False).astype(np.float32))
    else:
        codes = BinaryCodes(values.astype(np.uint8, copy=False), dim, binary_mode)
    cents, cent_offsets = nested_vectors_to_numpy(data.column("centroids"))
    return CodeIndex(codes, offsets, cents.astype(np.float16, copy=False), cent_offsets)


def load_code_cache(table: Any, version: int, quantization: str, dim: int,
                    binary_mode: str = "asymmetric") -> CodeCache:
    """Scan keys, row ids, codes and centroids (never the full vectors) into memory."""
    data = (table.search().with_row_id(True).select(_code_columns(quantization))
            .limit(None).to_arrow())
    keys = np.array(data.column("key").to_pylist(), dtype=object)  # (P,)
    row_ids = data.column("_rowid").to_numpy().astype(np.uint64)  # (P,)
    index = _index_of(data, quantization, dim, binary_mode)
    return CodeCache(version, keys, row_ids, index)


#: past this share of pages changed by the commits since the cache was loaded, reload
_MAX_CHANGED = 0.25


def _appended_since(table: Any, cache: CodeCache, quantization: str, dim: int,
                    binary_mode: str) -> tuple[CodeIndex, np.ndarray, np.ndarray] | None:
    """(codes, keys, row ids) of the rows added since ``cache`` when rows were only added
    (the commit of new pages, the common case); ``None`` when anything else happened.

    New rows have row ids above every cached one (appends go to new fragments), and LanceDB
    reads only the fragments a ``_rowid`` filter can match: at 10k pages in 79 fragments
    8 ms, against 43 ms for the key scan of every row. Only additions when the count of
    rows is the cached count plus the rows found: a deletion (or the delete of an update or
    a compaction) lowers it.
    """
    if cache.row_ids.size == 0:
        return None
    after = int(cache.row_ids.max())
    total = int(table.count_rows())
    data = (table.search().where(f"_rowid > {after}").with_row_id(True)
            .select(_code_columns(quantization)).limit(None).to_arrow())
    if data.num_rows == 0 or total != cache.keys.size + data.num_rows:
        return None
    new_keys = np.array(data.column("key").to_pylist(), dtype=object)
    new_rows = data.column("_rowid").to_numpy().astype(np.uint64)
    return _index_of(data, quantization, dim, binary_mode), new_keys, new_rows


def refresh_code_cache(table: Any, cache: CodeCache, version: int, quantization: str,
                       dim: int, binary_mode: str = "asymmetric") -> CodeCache | None:
    """The cache moved to ``version`` by what changed: pages gone are dropped, new pages'
    codes read by row id, everything else kept as it is. Reads the key and row id columns
    plus the new pages' codes, not the whole collection; ``None`` when a full reload is
    the better (or only safe) way: most pages changed (a compaction moves every row id),
    or the table moved again while the new pages were read."""
    appended = _appended_since(table, cache, quantization, dim, binary_mode)
    if appended is not None:
        new, new_keys, new_rows = appended
        keep = np.arange(cache.keys.size, dtype=np.int64)
        return CodeCache(version, np.concatenate([cache.keys, new_keys]),
                         np.concatenate([cache.row_ids, new_rows]),
                         cache.index.updated(keep, new))
    scan = table.search().with_row_id(True).select(["key"]).limit(None).to_arrow()
    keys = np.array(scan.column("key").to_pylist(), dtype=object)  # (P',)
    row_ids = scan.column("_rowid").to_numpy().astype(np.uint64)  # (P',)
    before = dict(zip(zip(cache.keys.tolist(), cache.row_ids.tolist()),
                      range(cache.keys.size)))
    now = list(zip(keys.tolist(), row_ids.tolist()))
    kept = np.array(sorted(i for i in (before.get(pair) for pair in now) if i is not None),
                    dtype=np.int64)
    added = [j for j, pair in enumerate(now) if pair not in before]
    changed = (cache.keys.size - kept.size) + len(added)
    if changed > _MAX_CHANGED * max(keys.size, cache.keys.size, 1):
        return None
    if not added and kept.size == cache.keys.size:
        return CodeCache(version, cache.keys, cache.row_ids, cache.index)
    if added:
        data = (table.take_row_ids([int(row_ids[j]) for j in added])
                .select(_code_columns(quantization)).to_arrow())
        if data.num_rows != len(added):  # a commit in between removed some: start over
            return None
        new = _index_of(data, quantization, dim, binary_mode)
        new_keys = np.array(data.column("key").to_pylist(), dtype=object)
        row_of = {keys[j]: row_ids[j] for j in added}
        new_rows = np.array([row_of[k] for k in new_keys.tolist()], dtype=np.uint64)
    else:  # only removals
        new = cache.index.empty_like()
        new_keys, new_rows = np.zeros(0, dtype=object), np.zeros(0, np.uint64)
    index = cache.index.updated(kept, new)
    return CodeCache(version, np.concatenate([cache.keys[kept], new_keys]),
                     np.concatenate([cache.row_ids[kept], new_rows]), index)


#: concurrent takes a fetch is split into: LanceDB reads one take on one thread; at 10k
#: pages two takes of 64 pages fetched 128 pages' full vectors in 36 ms against 76 ms
#: for one take of them with their keys (more parts only added overhead on 2 cores)
FETCH_PARTS = 2
_FETCH_POOL: ThreadPoolExecutor | None = None
_FETCH_POOL_LOCK = threading.Lock()


def _fetch_pool() -> ThreadPoolExecutor:
    global _FETCH_POOL
    with _FETCH_POOL_LOCK:
        if _FETCH_POOL is None:
            _FETCH_POOL = ThreadPoolExecutor(FETCH_PARTS, thread_name_prefix="lancedb-fetch")
        return _FETCH_POOL


def _take_vectors(table: Any, row_ids: np.ndarray) -> pa.Table:
    """The ``vectors`` and ``_rowid`` of ``row_ids`` (ascending), in parts read at once."""
    def take(part: np.ndarray) -> pa.Table:
        return table.take_row_ids(part.tolist()).select(["vectors"]).with_row_id().to_arrow()

    if row_ids.size < 2 * FETCH_PARTS:
        return take(row_ids)
    parts = list(_fetch_pool().map(take, np.array_split(row_ids, FETCH_PARTS)))
    return pa.concat_tables(parts)


def fetch_vectors(table: Any, cache: CodeCache, pages: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Full vectors of ``pages`` (cache positions), in that order -> ((R, d), (m+1,)).

    Raises StaleCacheError when a page is gone or moved (another writer committed since
    the cache was loaded), so the caller reloads instead of scoring the wrong page.
    """
    pages = np.asarray(pages, dtype=np.int64)
    if pages.size == 0:
        dim = cache.index.codes.dim
        return np.zeros((0, dim), np.float32), np.zeros(1, np.int64)
    wanted = cache.row_ids[pages].astype(np.uint64)
    data = _take_vectors(table, np.sort(wanted))
    vectors, offsets = nested_vectors_to_numpy(data.column("vectors"))
    # LanceDB returns rows in its own order and drops deleted ones: match them by row id
    # (a deleted, updated or compacted row's id is not reused, so a match is that row)
    got = data.column("_rowid").to_numpy().astype(np.uint64)
    order = np.argsort(got, kind="stable")
    at = np.searchsorted(got, wanted, sorter=order)
    at = np.minimum(at, got.size - 1)
    if got.size == 0 or not np.array_equal(got[order[at]], wanted):
        raise StaleCacheError("a shortlisted page is no longer in the table")
    idx = order[at]  # (m,) position of each wanted page among the rows taken
    lengths = offsets[idx + 1] - offsets[idx]  # (m,)
    expected = np.diff(cache.index.offsets)[pages]
    if not np.array_equal(lengths, expected):
        raise StaleCacheError("a shortlisted page changed since its codes were cached")
    sub_offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    if np.array_equal(idx, np.arange(idx.size)):  # already in the order asked: no copy
        return vectors, sub_offsets
    return vectors[page_rows(offsets, idx)], sub_offsets


def code_search(
    table: Any,
    cache: CodeCache,
    queries: list[np.ndarray],
    k: int,
    *,
    rerank: int,
    threads: int | None = None,
) -> list[list[tuple[str, float]]]:
    """Top ``k`` (key, exact score) per query: codes shortlist ``rerank`` pages (at least
    ``k``), exact MaxSim on their full vectors ranks them; ties go by key."""
    from retriever.search.twostage import two_stage_search

    live = [i for i, q in enumerate(queries) if len(q)]
    found = two_stage_search(cache.index, [queries[i] for i in live],
                             lambda pages: fetch_vectors(table, cache, pages),
                             rerank=max(rerank, k), threads=threads)
    results: list[list[tuple[str, float]]] = [[] for _ in queries]
    lengths = np.diff(cache.index.offsets)
    for i in range(len(queries)):
        if i in live:
            pages, scores = found[live.index(i)]  # (r,), (r,) best first
        else:  # no query vectors: every page with vectors scores 0 (a sum over nothing)
            pages = np.flatnonzero(lengths > 0)
            scores = np.zeros(pages.size, np.float32)
        ranked = sorted(zip(cache.keys[pages].tolist(), scores.tolist()),
                        key=lambda ks: (-ks[1], ks[0]))
        results[i] = [(str(key), float(s)) for key, s in ranked[:k] if np.isfinite(s)]
    return results


class CodeSearcher:
    """The code cache of one open collection and the search over it.

    The cache follows the table version, so commits of any process are seen by the next
    search; a commit landing during a search is caught when the shortlisted pages are
    fetched, and the search runs once more on a fresh cache.
    """

    def __init__(self, quantization: str, dim: int) -> None:
        self.quantization = quantization
        self.dim = dim
        self._cache: CodeCache | None = None
        self._lock = threading.Lock()

    def cache(self, table: Any) -> CodeCache:
        with self._lock:
            # the version is read before the data: a commit in between only means one
            # more reload later, never stale data under a new version
            version = int(table.version)
            if self._cache is not None and self._cache.version != version:
                # a commit: follow it by what changed; a full reload only when that fails
                self._cache = refresh_code_cache(table, self._cache, version,
                                                 self.quantization, self.dim)
            if self._cache is None or self._cache.version != version:
                self._cache = None  # let the old codes go before the new ones load
                self._cache = load_code_cache(table, version, self.quantization, self.dim)
            return self._cache

    def clear(self) -> None:
        with self._lock:
            self._cache = None

    def search(self, table: Any, queries: Sequence[MultiVector], k: int, rerank: int,
               threads: int | None) -> list[list[ScoredPage]]:
        vectors = [q.vectors for q in queries]
        cache = self.cache(table)
        if k <= 0 or cache.keys.size == 0:
            return [[] for _ in queries]
        try:
            found = code_search(table, cache, vectors, k, rerank=rerank, threads=threads)
        except StaleCacheError:  # another writer committed mid-search: once more
            if int(table.version) == cache.version:  # the cache itself is wrong: reload
                self.clear()
            cache = self.cache(table)
            found = code_search(table, cache, vectors, k, rerank=rerank, threads=threads)
        return [[ScoredPage(key, score) for key, score in hits] for hits in found]

"""Exact search's memory cache of a LanceDB table: every page's vectors back to back.

It is rebuilt when the table version moves (a commit by any process) and also serves
``get`` a fast path: the row offset of each key in the version it holds.
"""

from __future__ import annotations

__all__ = ["VectorCache", "ExactCache", "CACHE_DTYPES"]

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from retriever.types import PageRecord

from . import arrow as arrow_io

CACHE_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class VectorCache:
    """Every page's vectors back to back, as ``maxsim_scores`` wants them."""

    version: int
    keys: np.ndarray  # (P,) str, row order of the table
    vectors: np.ndarray  # (N, d) float32 (or float16 when asked to save memory)
    offsets: np.ndarray  # (P+1,) int64
    rows: dict[str, int] | None = None  # key -> row offset in this version (get's fast path)


class ExactCache:
    """The cache of one table, in ``dtype``; safe to share between searching threads."""

    def __init__(self, dtype: str) -> None:
        self.dtype = np.dtype(dtype)
        self._held: VectorCache | None = None
        self._lock = threading.Lock()

    def current(self, table: Any) -> VectorCache:
        """The cache of ``table``'s current version, loaded again if it moved."""
        with self._lock:
            # read the version before the data: if a commit lands in between, the cache
            # holds newer data under an older version and simply reloads once more
            version = int(table.version)
            held = self._held
            if held is None or held.version != version:
                self._held = None  # let the old matrix go before the new one is built
                data = table.search().select(["key", "vectors"]).limit(None).to_arrow()
                vectors, offsets = arrow_io.nested_vectors_to_numpy(data.column("vectors"))
                keys = np.array(data.column("key").to_pylist(), dtype=object)  # (P,)
                del data
                held = VectorCache(version, keys, vectors.astype(self.dtype), offsets,
                                   {k: i for i, k in enumerate(keys.tolist())})
                self._held = held
            return held

    def take(self, table: Any, keys: list[str], columns: list[str]) -> dict[str, PageRecord]:
        """Records of the pages the cache knows, taken by row offset (no filter scan).
        Offsets from an older version can point at other rows: every row is checked by
        its key, and whatever does not match is left to the caller's filtered scan."""
        held = self._held
        if held is None or held.rows is None or not keys:
            return {}
        wanted = [k for k in keys if k in held.rows]
        if not wanted:
            return {}
        try:
            rows = table.take_offsets([held.rows[k] for k in wanted]).select(columns).to_arrow()
        except Exception:  # noqa: BLE001 - offsets past the end of a shrunk table
            return {}
        return {rec.key: rec for rec in arrow_io.table_to_records(rows) if rec.key in wanted}

    def clear(self) -> None:
        with self._lock:
            self._held = None

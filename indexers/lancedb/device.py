"""Exact search with a collection's pages held on an accelerator (the ``device`` option).

The search cache's pages are uploaded to the device in half precision
(``retriever.search.device_pages``) once per table version, and every search there scores
them all exactly at the device's memory bandwidth. A commit (a new table version) uploads
the pages again on the next search: the LanceDB cache itself is rebuilt per version, so
there is no older upload to move forward.
"""

from __future__ import annotations

__all__ = ["DeviceCache"]

import threading
from typing import Any

import numpy as np

from retriever.protocols import ScoredPage
from retriever.search.device_pages import DevicePages, ranked_by_key
from retriever.search.ragged import page_rows
from retriever.types import MultiVector


class DeviceCache:
    """The device copy of one search cache (a table version), per device name."""

    def __init__(self) -> None:
        self._held: tuple[tuple[int, str], DevicePages] | None = None
        self._lock = threading.Lock()

    def search(self, cache: Any, queries: list[MultiVector], k: int,
               device: str) -> list[list[ScoredPage]]:
        """Top ``k`` pages per query of ``cache`` (keys, vectors, offsets, version)."""
        with self._lock:
            held = self._held
            if held is None or held[0] != (cache.version, device):
                self._held = None  # the old upload goes before the new one is made
                pages = DevicePages.build(
                    lambda positions: _rows(cache, positions), int(cache.keys.size),
                    dim=int(cache.vectors.shape[1]), device=device)
                self._held = held = ((cache.version, device), pages)
        return ranked_by_key(held[1].search([q.vectors for q in queries], k), cache.keys)


def _rows(cache: Any, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.diff(cache.offsets)[positions]
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return cache.vectors[page_rows(cache.offsets, positions)], offsets

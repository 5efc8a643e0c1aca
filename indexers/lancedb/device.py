"""Exact search with a collection's pages held on an accelerator (the ``device`` option).

The pages of one table version are uploaded to the device in half precision
(``retriever.search.device_pages``), read from that version's Lance dataset a chunk of
pages at a time, so the host never holds the collection; every search there scores them
all exactly at the device's memory bandwidth. A commit (a new table version) uploads the
pages again on the next search.
"""

from __future__ import annotations

__all__ = ["DeviceCache"]

import threading
from typing import Any

import numpy as np

from retriever.protocols import ScoredPage
from retriever.search.device_pages import DevicePages, ranked_by_key
from retriever.types import MultiVector

from . import arrow as arrow_io


class DeviceCache:
    """The device copy of one table version's pages, per device name."""

    def __init__(self) -> None:
        self._held: tuple[tuple[int, str], np.ndarray, DevicePages] | None = None
        self._lock = threading.Lock()

    def search(self, table: Any, queries: list[MultiVector], k: int, device: str,
               dim: int) -> list[list[ScoredPage]]:
        """Top ``k`` pages per query of ``table``'s current version."""
        with self._lock:
            held = self._held
            if held is None or held[0] != (int(table.version), device):
                self._held = None  # the old upload goes before the new one is made
                # a dataset pinned at one version: keys and vectors come from the same
                # rows even if a commit lands meanwhile
                dataset = table.to_lance()
                keys = np.array(dataset.to_table(columns=["key"]).column("key").to_pylist(),
                                dtype=object)  # (P,) in row order

                def rows(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                    data = dataset.take(positions.tolist(), columns=["vectors"])
                    return arrow_io.nested_vectors_to_numpy(data.column("vectors"))

                pages = DevicePages.build(rows, int(keys.size), dim=dim, device=device)
                self._held = held = ((dataset.version, device), keys, pages)
        _, keys, pages = held
        if k <= 0 or keys.size == 0:
            return [[] for _ in queries]
        return ranked_by_key(pages.search([q.vectors for q in queries], k), keys)

"""Exact search with a collection's pages held on an accelerator (the ``device`` option).

The pages of a view are uploaded once to the device in half precision
(``retriever.search.device_pages``) and every search there reads them all: exact MaxSim at
the device's memory bandwidth, with nothing approximate about which pages are scored. A
commit uploads only the pages it added; the pages it removed drop out of the next view
(``carry_device``), so following a commit costs what it wrote, not the collection.
"""

from __future__ import annotations

__all__ = ["device_search", "carry_device"]

from typing import Any

import numpy as np

from retriever.protocols import ScoredPage
from retriever.search.device_pages import DevicePages, ranked_by_key
from retriever.types import MultiVector

from .state import LiveView

_KIND = "device"


def _pages(view: LiveView, device: str) -> DevicePages:
    return view.cached((_KIND, device), lambda: DevicePages.build(
        view.gather, len(view), dim=view.dim, device=device))


def device_search(view: LiveView, queries: list[MultiVector], k: int,
                  device: str) -> list[list[ScoredPage]]:
    """Top ``k`` pages per query by exact MaxSim on ``device`` (half precision)."""
    found = _pages(view, device).search([q.vectors for q in queries], k)
    return ranked_by_key(found, view.keys)


def carry_device(old: LiveView, new: LiveView) -> None:
    """Start ``new`` from the device pages ``old`` uploaded, moved by what the commit
    changed (the added pages uploaded, the removed ones left out); nothing when ``old``
    uploaded none, when the views do not follow on (a merge reordered pages), or when so
    little would stay live that the first search had better upload afresh."""
    held: dict[Any, DevicePages] = old.built_of(_KIND)
    step = new.continuation(old) if held else None
    if step is None:
        return
    kept, added = step
    for key, pages in held.items():
        moved = pages.updated(kept, new.gather, np.asarray(added, np.int64))
        if moved is not None:
            new.seed(key, moved)

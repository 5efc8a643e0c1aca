"""LanceDB's own flat multivector search: a cross-check of our kernel and a benchmark peer.

LanceDB returns ``_distance = n_query_vectors - MaxSim`` with the cosine metric on
normalized vectors; pages without vectors are never returned.
"""

from __future__ import annotations

__all__ = ["native_maxsim_search"]

from collections.abc import Sequence
from typing import Any

import numpy as np

from retriever.protocols import ScoredPage
from retriever.types import MultiVector


def native_maxsim_search(table: Any, queries: Sequence[MultiVector],
                         k: int) -> list[list[ScoredPage]]:
    """Top ``k`` pages per query by MaxSim, computed by LanceDB over the ``vectors`` column."""
    out: list[list[ScoredPage]] = []
    for q in queries:
        if q.n == 0 or k <= 0 or table.count_rows() == 0:
            out.append([])
            continue
        found = (
            table.search(q.vectors.astype(np.float32), vector_column_name="vectors")
            .distance_type("cosine")
            .select(["key", "_distance"])
            .limit(k)
            .to_arrow()
        )
        hits = [
            (q.n - float(d), key)  # back from distance to MaxSim
            for key, d in zip(found.column("key").to_pylist(),
                              found.column("_distance").to_pylist())
        ]
        hits.sort(key=lambda h: (-h[0], h[1]))
        out.append([ScoredPage(key, score) for score, key in hits])
    return out

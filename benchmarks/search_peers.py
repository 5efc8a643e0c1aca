"""The systems benchmarks/search.py compares, each behind one small function.

Every function takes float32 pages already in memory (or a LanceDB table) and one query,
and returns the score of every page, or a ranked list of page indices. Peers are imported
inside their functions, so a missing one only removes its row.
"""

from __future__ import annotations

__all__ = [
    "colpali_engine_scores",
    "numpy_blocked_scores",
    "lancedb_native",
    "fast_plaid_status",
]

from typing import Any

import numpy as np


def numpy_blocked_scores(query: np.ndarray, pages: np.ndarray, block: int = 16) -> np.ndarray:
    """The plain baseline: blocks of whole pages, one matmul, max, sum (float32)."""
    p, n, d = pages.shape
    out = np.empty(p, np.float32)
    q_t = np.ascontiguousarray(query.T)  # (d, q)
    for s in range(0, p, block):
        sims = pages[s : s + block].reshape(-1, d) @ q_t  # (b * n, q)
        out[s : s + block] = sims.reshape(-1, n, q_t.shape[1]).max(axis=1).sum(axis=1)
    return out


def colpali_engine_scores(query: np.ndarray, page_tensors: list[Any]) -> np.ndarray:
    """colpali-engine's own scorer (``score_multi_vector``), on CPU, its default batch;
    ``page_tensors``: a list of (n, d) tensors or one pre-padded (P, n, d) tensor."""
    import torch
    from colpali_engine.utils.processing_utils import BaseVisualRetrieverProcessor

    scores = BaseVisualRetrieverProcessor.score_multi_vector(
        [torch.from_numpy(query)], page_tensors, device="cpu")  # (1, P)
    return scores[0].float().numpy()


def lancedb_native(table: Any, query: np.ndarray, k: int, n_pages: int) -> list[int]:
    """LanceDB's flat multivector search (cosine, ``n_query - MaxSim``) -> page indices."""
    hits = (table.search(query, vector_column_name="vectors").distance_type("cosine")
            .select(["page", "_distance"]).limit(k).to_arrow())
    return [int(p) for p in hits.column("page").to_pylist()]


def fast_plaid_status() -> str:
    """Whether fast-plaid can run here. Every fast-plaid wheel pins one exact torch
    (``pip download --no-deps fast-plaid``: 1.7.0.2110 requires torch==2.11.0, the newest
    build); installing it would replace this environment's torch, so it is only checked."""
    try:
        import fast_plaid  # noqa: F401

        return "installed"
    except ImportError:
        pass
    try:
        import torch

        have = torch.__version__.split("+")[0]
    except ImportError:
        have = "none"
    return f"not run: fast-plaid 1.7.0.2110 pins torch==2.11.0, this venv has torch {have}"

"""Page scores from per-query-vector nearest-neighbour hits, with missing similarities imputed.

A token-level first stage (FAISS over stored vectors, or an IVF over page centroids) gives,
for each query vector, its ``t`` nearest stored items and their similarities. A page's
approximate MaxSim is the sum over query vectors of its best retrieved similarity; where a
query vector retrieved nothing of the page, it contributes the lowest similarity it did
retrieve: nothing it missed can beat that, so the estimate is an upper bound on what the
missed part could add (the imputation ColBERTv2/PLAID and XTR use). Pages no query vector
retrieved are not candidates at all.
"""

from __future__ import annotations

__all__ = ["imputed_page_scores"]

import numpy as np


def imputed_page_scores(sims: np.ndarray, pages: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Hits of one query -> (candidate pages (U,) ascending, approximate scores (U,)).

    ``sims`` (q, t) float32 and ``pages`` (q, t) int64: the page of each hit, ``-1`` where
    there is none (fewer than ``t`` hits, or an item of no live page).
    """
    found = pages >= 0
    if not found.any():
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    tokens = np.nonzero(found)[0]  # (h,) which query vector each hit belongs to
    unique, where = np.unique(pages[found], return_inverse=True)  # (U,), (h,)
    floor = np.where(found, sims, np.inf).min(axis=1)  # (q,) lowest similarity retrieved
    floor = np.where(np.isfinite(floor), floor, 0.0).astype(np.float32)
    best = np.repeat(floor[:, None], unique.size, axis=1)  # (q, U)
    np.maximum.at(best, (tokens, where), sims[found].astype(np.float32))
    return unique.astype(np.int64), best.sum(axis=0)

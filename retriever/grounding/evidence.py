"""Per-region evidence: vector relevance spread onto region boxes, blended with lexical.

A vector's relevance is its best similarity to any query vector. It counts for a region in
proportion to how much of the vector's box lies inside the region; a vector whose box is
(nearly) the whole page says nothing about *where* the answer is and counts nowhere.
"""

from __future__ import annotations

__all__ = ["GLOBAL_BOX_AREA", "overlap_matrix", "region_scores", "is_global", "blend"]

import numpy as np

from .options import Aggregate

#: a vector whose box covers at least this much of the page is a global (page) vector
GLOBAL_BOX_AREA = 0.98


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def is_global(vector_boxes: np.ndarray) -> np.ndarray:
    """(n,) bool: vectors with a whole-page box (a pooled CLIP embedding, a CLS token)."""
    return _areas(np.asarray(vector_boxes, np.float32)) >= GLOBAL_BOX_AREA


def overlap_matrix(region_boxes: np.ndarray, vector_boxes: np.ndarray,
                   min_overlap: float = 0.0) -> np.ndarray:
    """Fraction of each vector's box inside each region: (n_regions, n_vectors) in [0, 1].

    Vectors with a whole-page box get weight 0 everywhere; a zero-area box (a point) counts
    as inside a region when the point is. Fractions below ``min_overlap`` become 0, so a
    patch that only grazes a region does not count for it.
    """
    r = np.asarray(region_boxes, np.float32)[:, None, :]  # (R, 1, 4)
    vb = np.asarray(vector_boxes, np.float32)
    v = vb[None, :, :]  # (1, n, 4)
    iw = np.minimum(r[..., 2], v[..., 2]) - np.maximum(r[..., 0], v[..., 0])  # (R, n)
    ih = np.minimum(r[..., 3], v[..., 3]) - np.maximum(r[..., 1], v[..., 1])  # (R, n)
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)  # (R, n)
    area = _areas(vb)  # (n,)
    weights = inter / np.maximum(area, 1e-12)[None, :]  # (R, n)
    degenerate = area <= 1e-12
    if degenerate.any():
        touches = (iw >= 0) & (ih >= 0)  # (R, n): a point on or inside the region
        weights[:, degenerate] = touches[:, degenerate].astype(np.float32)
    weights[:, area >= GLOBAL_BOX_AREA] = 0.0
    weights = np.clip(weights, 0.0, 1.0)
    if min_overlap > 0:
        # a little slack so a vector exactly on the threshold (1/2 of a patch) still counts
        weights[weights < min_overlap - 1e-6] = 0.0
    return weights


def region_scores(relevance: np.ndarray, weights: np.ndarray,
                  aggregate: Aggregate = "mean") -> np.ndarray:
    """Score per region from per-vector relevance (n,) and weights (R, n); NaN = no evidence."""
    covered = weights.sum(axis=1)  # (R,)
    if aggregate == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = (weights @ relevance) / covered  # (R,)
    elif aggregate == "max":
        masked = np.where(weights > 0, relevance[None, :], -np.inf)  # (R, n)
        scores = masked.max(axis=1, initial=-np.inf)
    else:
        raise ValueError(f"unknown aggregate {aggregate!r}; use 'mean' or 'max'")
    return np.where(covered > 0, scores, np.nan).astype(np.float32)


def blend(vector: np.ndarray, lexical: np.ndarray | None, weight: float) -> np.ndarray:
    """``(1 - weight) * vector + weight * lexical`` per region; NaN where neither says.

    Vector evidence is rescaled to [0, 1] over the page first (its raw cosine range differs
    per encoder, lexical evidence is already in [0, 1]), so ``weight`` means the same for
    every encoder. A region with only one kind of evidence gets that kind alone.
    """
    if lexical is None or weight <= 0:
        return vector
    lex = np.clip(np.nan_to_num(np.asarray(lexical, np.float32), nan=0.0), 0.0, 1.0)  # (R,)
    known = ~np.isnan(vector)
    if not known.any():
        return lex.astype(np.float32)
    lo, hi = float(np.nanmin(vector)), float(np.nanmax(vector))
    scaled = (vector - lo) / (hi - lo) if hi > lo else np.where(known, 1.0, np.nan)
    mixed = (1.0 - weight) * scaled + weight * lex
    return np.where(known, mixed, lex).astype(np.float32)

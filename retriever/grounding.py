"""Patch-to-region relevance propagation: which regions of a page answer a query.

Each stored vector has a box on the page. A vector's relevance is its best similarity to
any query vector; a region's score is the overlap-weighted mean (or the max) of the
relevance of the vectors whose boxes fall in it. Regions at or above the page's median
region score are kept. It needs only the stored vectors and boxes, never the page image
or a second forward pass, so it works the same for every encoder.
"""

from __future__ import annotations

__all__ = ["overlap_matrix", "region_scores", "ground", "Aggregate"]

from collections.abc import Sequence
from typing import Literal

import numpy as np

from .scoring import vector_relevance
from .types import MultiVector, Region, RegionHit

Aggregate = Literal["mean", "max"]

# A vector whose box covers (nearly) the whole page says nothing about where the answer is.
_GLOBAL_BOX_AREA = 0.98


def overlap_matrix(region_boxes: np.ndarray, vector_boxes: np.ndarray) -> np.ndarray:
    """Fraction of each vector's box inside each region: (n_regions, n_vectors) in [0, 1].

    Vectors with a whole-page box get weight 0 everywhere; a zero-area box (a point) counts
    as inside a region when the point is.
    """
    r = region_boxes[:, None, :].astype(np.float32)  # (R, 1, 4)
    v = vector_boxes[None, :, :].astype(np.float32)  # (1, n, 4)
    iw = np.minimum(r[..., 2], v[..., 2]) - np.maximum(r[..., 0], v[..., 0])  # (R, n)
    ih = np.minimum(r[..., 3], v[..., 3]) - np.maximum(r[..., 1], v[..., 1])  # (R, n)
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)  # (R, n)
    area = (vector_boxes[:, 2] - vector_boxes[:, 0]) * (vector_boxes[:, 3] - vector_boxes[:, 1])
    weights = inter / np.maximum(area, 1e-12)[None, :]  # (R, n)
    degenerate = area <= 1e-12
    if degenerate.any():
        touches = (iw >= 0) & (ih >= 0)  # (R, n): a point on or inside the region
        weights[:, degenerate] = touches[:, degenerate].astype(np.float32)
    weights[:, area >= _GLOBAL_BOX_AREA] = 0.0
    return np.clip(weights, 0.0, 1.0)


def region_scores(
    relevance: np.ndarray, weights: np.ndarray, aggregate: Aggregate = "mean"
) -> np.ndarray:
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


def ground(
    query: MultiVector,
    page: MultiVector,
    regions: Sequence[Region],
    *,
    aggregate: Aggregate = "mean",
    percentile: float = 50.0,
    max_regions: int | None = None,
) -> list[RegionHit]:
    """Regions of one page that answer ``query``, best first.

    Regions scoring at or above the ``percentile`` of this page's region scores are kept
    (50 = the median, as in Snappy); regions no vector overlaps are never returned.
    """
    if not regions or page.n == 0 or query.n == 0:
        return []
    relevance = vector_relevance(query.vectors, page.vectors)  # (n_vectors,)
    boxes = np.asarray([region.bbox for region in regions], np.float32)  # (R, 4)
    scores = region_scores(relevance, overlap_matrix(boxes, page.boxes), aggregate)
    evidence = ~np.isnan(scores)
    if not evidence.any():
        return []
    scored = scores[evidence]
    threshold = np.percentile(scored, percentile)
    keep_mask = evidence & (scores >= threshold - 1e-7)
    tied_at_bottom = threshold <= scored.min() + 1e-7 and scored.max() > threshold + 1e-7
    if percentile > 0 and tied_at_bottom:
        # Many regions tied at the bottom (e.g. no similarity at all) put the median at
        # the minimum; keeping them would return unrelated regions. Keep those above it.
        keep_mask &= scores > threshold + 1e-7
    keep = np.flatnonzero(keep_mask)
    order = keep[np.argsort(-scores[keep], kind="stable")]
    if max_regions is not None:
        order = order[:max_regions]
    return [
        RegionHit(bbox=regions[i].bbox, text=regions[i].text, score=float(scores[i]),
                  level=regions[i].level)
        for i in order
    ]

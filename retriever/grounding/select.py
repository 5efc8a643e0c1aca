"""Which scored units come back: percentile, top-k, margin or largest gap, best first."""

from __future__ import annotations

__all__ = ["select_units"]

import numpy as np

from .options import GroundingOptions

_EPS = 1e-7


def _percentile(scores: np.ndarray, scored: np.ndarray, percentile: float) -> np.ndarray:
    threshold = float(np.percentile(scored, percentile))
    keep = scores >= threshold - _EPS
    tied_at_bottom = threshold <= scored.min() + _EPS and scored.max() > threshold + _EPS
    if percentile > 0 and tied_at_bottom:
        # Many regions tied at the bottom (e.g. no similarity at all) put the median at
        # the minimum; keeping them would return unrelated regions. Keep those above it.
        keep &= scores > threshold + _EPS
    return keep


def _margin(scores: np.ndarray, scored: np.ndarray, margin: float) -> np.ndarray:
    # in units of the page's spread (best - median), so one margin fits every encoder's
    # similarity scale; margin 1 keeps what the median keeps, 0 only the best
    best, median = float(scored.max()), float(np.median(scored))
    return scores >= best - margin * (best - median) - _EPS


def _gap(order: np.ndarray, scores: np.ndarray, cap: int | None) -> np.ndarray:
    """The prefix of ``order`` (best first) that ends at the largest drop in score."""
    ranked = scores[order]
    window = ranked if cap is None else ranked[: cap + 1]
    if window.size <= 1:
        return order[:1]
    drops = window[:-1] - window[1:]  # drops[i]: after the (i+1)-th best
    return order[: int(np.argmax(drops)) + 1]


def select_units(scores: np.ndarray, options: GroundingOptions) -> np.ndarray:
    """Indices of the kept units, best first (stable: ties keep reading order).

    ``scores`` (U,) with NaN for units no evidence reached; those are never kept.
    """
    evidence = ~np.isnan(scores)
    if not evidence.any():
        return np.zeros(0, np.int64)
    scored = scores[evidence]
    filled = np.where(evidence, scores, -np.inf)
    order = np.argsort(-filled, kind="stable")[: int(evidence.sum())]
    cap = options.max_regions
    if options.select == "percentile":
        keep = _percentile(filled, scored, options.percentile)
        order = order[keep[order]]
    elif options.select == "margin":
        keep = _margin(filled, scored, options.margin)
        order = order[keep[order]]
    elif options.select == "gap":
        order = _gap(order, filled, cap)
    # "top_k": every scored unit, best first; the cap below does the selecting
    return order if cap is None else order[:cap]

"""``ground``: the regions of one page that answer a query, best first.

Vector evidence (each stored vector's relevance spread onto the units by box overlap) and,
when the caller has it, lexical evidence (per region, in [0, 1]) are blended per unit;
``select_units`` keeps the best. A page whose vectors all have the whole-page box (a
single-vector encoder: CLIP, SigLIP, ViTamin without patches) has no evidence of *where*:
its regions are then ranked by the lexical evidence when given, else returned in reading
order, each scored by the page's own similarity, so every encoder returns regions (the
lexical evidence alone goes through the usual selection).
"""

from __future__ import annotations

__all__ = ["ground", "Lexical", "PatchRelevance", "patch_relevance"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..regions.columns import LazyRegions, RegionColumns
from ..search.scoring import vector_relevance
from ..types import MultiVector, Region, RegionHit
from .evidence import blend, is_global, overlap_matrix, region_scores
from .options import GroundingOptions, resolve_options
from .select import select_units
from .units import Units, group_boxes, line_height, merge_adjacent, page_units

#: lexical evidence: one value in [0, 1] per region of ``regions`` (top level; a line or a
#: block takes its paragraph's value), or a function scoring the texts of the units
Lexical = Union[Sequence[float], np.ndarray, Callable[[Sequence[str]], Sequence[float]]]


@dataclass(frozen=True)
class PatchRelevance:
    """Per stored vector of a page: its box and its relevance to a query, the evidence
    ``ground`` spreads onto regions (the report draws it as a heatmap)."""

    boxes: np.ndarray  # (n, 4) normalized, as stored
    relevance: np.ndarray  # (n,) float32: best similarity to any query vector
    local: np.ndarray  # (n,) bool: False for whole-page vectors, which say nothing of where

    @property
    def has_local(self) -> bool:
        return bool(self.local.any())


def patch_relevance(query: MultiVector, page: MultiVector) -> PatchRelevance:
    """What each of ``page``'s vectors says about ``query``, and where on the page."""
    relevance = vector_relevance(query.vectors, page.vectors)  # (n_vectors,)
    return PatchRelevance(page.boxes, relevance, ~is_global(page.boxes))


def _columns(regions: Sequence[Region] | RegionColumns) -> RegionColumns:
    if isinstance(regions, RegionColumns):
        return regions
    if isinstance(regions, LazyRegions):
        return regions.columns
    return RegionColumns.from_regions(regions)


def _lexical_per_unit(lexical: Lexical | None, units: Units) -> np.ndarray | None:
    if lexical is None:
        return None
    if callable(lexical):
        values = np.asarray(lexical([units.text(u) for u in range(len(units))]), np.float32)
        if values.shape != (len(units),):
            raise ValueError(f"lexical scorer returned {values.shape}, expected ({len(units)},)")
        return values
    per_region = np.asarray(lexical, np.float32)  # (top-level regions,)
    cols = units.columns
    top = cols.top_level()
    if per_region.shape != top.shape:
        raise ValueError(f"lexical evidence has {per_region.size} values for {top.size} regions")
    # each node's paragraph: walk parents up (pre-order, so a parent is resolved first)
    root = np.arange(len(cols))
    for i, p in enumerate(cols.parents.tolist()):
        if p >= 0:
            root[i] = root[p]
    value_of_root = np.zeros(len(cols), np.float32)
    value_of_root[top] = per_region
    return np.array([value_of_root[root[g]].max() for g in units.groups], np.float32)


def _hits(units: Units, order: Sequence[int], scores: np.ndarray) -> list[RegionHit]:
    return [RegionHit(bbox=units.bbox(u), text=units.text(u), score=float(scores[u]),
                      level=units.level_of(u)) for u in order]


def _merge_kept(units: Units, order: np.ndarray, scores: np.ndarray,
                opts: GroundingOptions) -> tuple[Units, list[int], np.ndarray]:
    """Kept units near the best that continue one another (reading order, one column)
    become one; the other kept units stay as they are."""
    scored = scores[~np.isnan(scores)]
    best, median = float(scored.max()), float(np.median(scored))
    close = scores[order] >= best - opts.merge_margin * (best - median) - 1e-7
    runs = merge_adjacent(units.boxes, sorted(order[close].tolist()),
                          opts.merge_gap * line_height(units.columns))
    runs += [[int(u)] for u in order[~close]]
    groups = [[n for u in run for n in units.groups[u]] for run in runs]
    boxes = group_boxes(units.boxes, runs).astype(np.float32)
    merged_scores = np.array([scores[run].max() for run in runs], np.float32)
    best_first = np.argsort(-merged_scores, kind="stable").tolist()
    return Units(units.columns, groups, boxes, units.level), best_first, merged_scores


def ground(
    query: MultiVector,
    page: MultiVector,
    regions: Sequence[Region] | RegionColumns,
    options: GroundingOptions | dict[str, Any] | None = None,
    *,
    lexical: Lexical | None = None,
    **overrides: Any,
) -> list[RegionHit]:
    """Regions of one page that answer ``query``, best first.

    ``options`` (or keyword overrides: ``level``, ``aggregate``, ``select``, ``percentile``,
    ``margin``, ``min_overlap``, ``max_regions``, ``lexical_weight``, ``merge``,
    ``merge_margin``, ``merge_gap``) say which; the aggregate left unset is "mean".
    ``lexical``: per-region lexical evidence in [0, 1] aligned with ``regions`` (or a
    function of the units' texts), blended with the vector evidence by
    ``lexical_weight``; None: vector evidence only.
    """
    opts = resolve_options(options, **overrides)
    cols = _columns(regions)
    if not len(cols) or page.n == 0 or query.n == 0:
        return []
    units = page_units(cols, opts.level, opts.merge_gap)
    if not len(units):
        return []
    relevance = patch_relevance(query, page).relevance  # (n_vectors,)
    weights = overlap_matrix(units.boxes, page.boxes, opts.min_overlap)  # (U, n)
    if page.counts is not None:  # a merged vector counts as the patches it replaced
        weights = weights * page.weights()[None, :]
    vector = region_scores(relevance, weights, opts.aggregate or "mean")  # (U,)
    lex = _lexical_per_unit(lexical, units)
    scores = blend(vector, lex, opts.lexical_weight)
    if np.isnan(scores).all():
        if not is_global(page.boxes).any():
            return []  # local vectors, none of them on a region: nothing to say
        return _reading_order(units, relevance, page, opts)
    order = select_units(scores, opts)
    if opts.merge and order.size > 1:
        units, order_list, scores = _merge_kept(units, order, scores, opts)
        return _hits(units, order_list, scores)
    return _hits(units, order.tolist(), scores)


def _reading_order(units: Units, relevance: np.ndarray, page: MultiVector,
                   opts: GroundingOptions) -> list[RegionHit]:
    """No evidence of where at all: the first regions, each scored by the page's own
    similarity (its global vector's). With lexical evidence ``blend`` already ranked
    the regions by it, so this is only reached without."""
    page_score = float(relevance[is_global(page.boxes)].max())
    order = range(min(opts.max_regions or len(units), len(units)))
    return _hits(units, list(order), np.full(len(units), page_score, np.float32))

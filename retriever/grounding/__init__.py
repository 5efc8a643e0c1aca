"""Patch-to-region relevance propagation: which regions of a page answer a query.

Each stored vector has a box on the page. A vector's relevance is its best similarity to
any query vector; a region's score is the overlap-weighted mean (or the max) of the
relevance of the vectors whose boxes fall in it, optionally blended with lexical evidence.
``GroundingOptions`` choose the unit (paragraph, line, word, merged block) and how the
returned ones are selected. It needs only the stored vectors and boxes, never the page
image or a second forward pass, so it works the same for every encoder; single-vector
encoders, which have no evidence of where, get the page's regions in reading order.

Modules: ``options`` (the knobs), ``evidence`` (overlap and scores), ``units`` (regions at a
level), ``select`` (which to keep), ``core`` (``ground``, and ``patch_relevance``: the
per-vector evidence itself, which the HTML report draws as a heatmap).
"""

from __future__ import annotations

__all__ = [
    "AGGREGATES",
    "LEVELS",
    "SELECTIONS",
    "Aggregate",
    "GroundingOptions",
    "Level",
    "Lexical",
    "PatchRelevance",
    "Selection",
    "ground",
    "overlap_matrix",
    "patch_relevance",
    "region_scores",
    "resolve_options",
]

from .core import Lexical, PatchRelevance, ground, patch_relevance
from .evidence import overlap_matrix, region_scores
from .options import (
    AGGREGATES,
    LEVELS,
    SELECTIONS,
    Aggregate,
    GroundingOptions,
    Level,
    Selection,
    resolve_options,
)

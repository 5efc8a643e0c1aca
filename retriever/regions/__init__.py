"""Text regions of a page (paragraph > line > word) from a PDF text layer, and helpers.

OCR engines live in plugins; this package holds what every source shares.
"""

from __future__ import annotations

__all__ = [
    "WordTuple",
    "flatten_lines",
    "mean_confidence",
    "normalize_box",
    "parse_bbox_layout",
    "regions_from_words",
    "text_layer_regions",
    "union_box",
]

from .layout import (
    WordTuple,
    flatten_lines,
    mean_confidence,
    normalize_box,
    regions_from_words,
    union_box,
)
from .textlayer import parse_bbox_layout, text_layer_regions

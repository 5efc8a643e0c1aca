"""``merge``: LLaVA-style windowed merging on the encoder's own grid.

The grid is read from the boxes, not assumed: the median box width and height are one
cell, and each vector falls in the window of ``factor`` x ``factor`` cells its box centre
lies in. A ViT patch grid merges exactly into k x k blocks; a ColQwen grid (2x2 blocks
already) into larger blocks; text-line vectors into runs of neighbouring lines of one
column. Page-level vectors are kept as they are.
"""

from __future__ import annotations

__all__ = ["WindowMerge", "window_labels"]

import numpy as np

from retriever.compression import is_local, merged
from retriever.types import MultiVector


def window_labels(boxes: np.ndarray, factor: int) -> np.ndarray:
    """(n,) window id per local box (-1 for page-level boxes): windows of ``factor`` x
    ``factor`` median cells, numbered row by row."""
    boxes = np.asarray(boxes, np.float32)
    local = is_local(boxes)
    labels = np.full(len(boxes), -1, np.int64)
    if not local.any():
        return labels
    cells = boxes[local]  # (m, 4)
    width = float(np.median(cells[:, 2] - cells[:, 0])) or 1e-3
    height = float(np.median(cells[:, 3] - cells[:, 1])) or 1e-3
    cx = (cells[:, 0] + cells[:, 2]) / 2
    cy = (cells[:, 1] + cells[:, 3]) / 2
    col = np.floor(cx / (width * factor)).astype(np.int64)  # (m,)
    row = np.floor(cy / (height * factor)).astype(np.int64)  # (m,)
    labels[local] = row * (int(col.max()) + 1) + col
    return labels


class WindowMerge:
    """Mean of each ``factor`` x ``factor`` window of the grid (boxes: their union)."""

    name = "merge"

    def __init__(self, factor: int = 2, min_keep: int = 16) -> None:
        self.factor = int(factor)
        self.min_keep = int(min_keep)

    def compress(self, mv: MultiVector) -> MultiVector:
        if mv.n <= self.min_keep:
            return mv
        return merged(mv, window_labels(mv.boxes, self.factor))

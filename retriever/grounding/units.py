"""The candidate units grounding scores: a page's regions at one level, as arrays.

A unit is one or more region nodes of ``RegionColumns`` (a block is several consecutive
paragraphs), with the box that holds them. Nothing here builds ``Region`` objects: texts
are joined only for the units that are returned.
"""

from __future__ import annotations

__all__ = ["Units", "page_units", "merge_adjacent", "table_rows", "line_height", "group_boxes",
           "BLOCK_GAP_LINES", "SAME_COLUMN", "ROW_GAP"]

from dataclasses import dataclass

import numpy as np

from ..regions.columns import RegionColumns
from ..types import BBox, RegionLevel
from .options import Level

#: paragraphs merge into one block when the vertical gap between them is at most this many
#: line heights (a blank line between paragraphs is about one line height)
BLOCK_GAP_LINES = 1.5
#: ... and they overlap horizontally by at least this share of the narrower one (a column)
SAME_COLUMN = 0.5
#: one-line regions side by side on a row are one unit when at most this far apart
#: (a fraction of the page width: table columns, a heading and its page number)
ROW_GAP = 0.25


@dataclass(frozen=True)
class Units:
    """``groups[u]``: the column nodes of unit ``u``; ``boxes`` (U, 4) float32."""

    columns: RegionColumns
    groups: list[list[int]]
    boxes: np.ndarray
    level: RegionLevel

    def __len__(self) -> int:
        return len(self.groups)

    def text(self, u: int) -> str:
        return " ".join(self.columns.text(i) for i in self.groups[u])

    def bbox(self, u: int) -> BBox:
        # from the float64 columns, so a region comes back with exactly its stored box
        group = self.columns.boxes[self.groups[u]]  # (members, 4)
        return (float(group[:, 0].min()), float(group[:, 1].min()), float(group[:, 2].max()),
                float(group[:, 3].max()))

    def level_of(self, u: int) -> RegionLevel:
        # a merged block is reported as a paragraph (the coarsest level a region has)
        group = self.groups[u]
        return self.level if len(group) > 1 else self.columns.level_name(group[0])


def _line_height(columns: RegionColumns) -> float:
    lines = columns.units("line")
    if not lines.size:
        return 0.0
    heights = columns.boxes[lines, 3] - columns.boxes[lines, 1]
    return float(np.median(heights))


def line_height(columns: RegionColumns) -> float:
    """The page's median line height (0 without lines): the unit of merge gaps."""
    return _line_height(columns)


def group_boxes(boxes: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """(G, 4) float64: the box holding each group's boxes (one reduceat, no Python loop)."""
    if not groups:
        return np.zeros((0, 4), np.float64)
    flat = np.fromiter((i for g in groups for i in g), np.int64)
    starts = np.zeros(len(groups), np.int64)
    np.cumsum([len(g) for g in groups[:-1]], out=starts[1:])
    picked = boxes[flat]  # (sum of sizes, 4)
    lo = np.minimum.reduceat(picked[:, :2], starts, axis=0)  # (G, 2)
    hi = np.maximum.reduceat(picked[:, 2:], starts, axis=0)  # (G, 2)
    return np.concatenate([lo, hi], axis=1).astype(np.float64)


def _joinable(a: list[float], b: list[float], max_gap: float) -> bool:
    """``b`` continues ``a`` in one column: below it, close, and overlapping in x."""
    overlap = min(a[2], b[2]) - max(a[0], b[0])
    narrower = min(a[2] - a[0], b[2] - b[0])
    gap = b[1] - a[3]
    return narrower > 0 and overlap >= SAME_COLUMN * narrower and -max_gap <= gap <= max_gap


def merge_adjacent(boxes: np.ndarray, order: list[int], max_gap: float) -> list[list[int]]:
    """Runs of ``order`` (unit indices, reading order) whose boxes continue one another."""
    rows = np.asarray(boxes, np.float64)[order].tolist()  # plain floats: a short Python loop
    runs: list[list[int]] = []
    current: list[float] = []
    for u, box in zip(order, rows):
        if runs and _joinable(current, box, max_gap):
            runs[-1].append(u)
            current = [min(current[0], box[0]), min(current[1], box[1]),
                       max(current[2], box[2]), max(current[3], box[3])]
        else:
            runs.append([u])
            current = box
    return runs


def table_rows(columns: RegionColumns, nodes: list[int]) -> list[list[int]]:
    """Group runs of one-line regions that sit side by side on one row (table cells).

    A text layer makes every table cell its own block: "North America" and "22.8" would be
    separate paragraphs, and the number alone scores nothing. A row is what answers.
    """
    one_line = ((columns.child_counts() <= 1) & (columns.levels < 2))[nodes].tolist()
    rows: list[list[int]] = []
    right = top = bottom = 0.0
    previous_one_line = False
    for node, single, (x0, y0, x1, y1) in zip(nodes, one_line,
                                             columns.boxes[nodes].tolist()):
        if rows and single and previous_one_line:
            overlap = min(bottom, y1) - max(top, y0)
            same_row = overlap >= 0.5 * min(bottom - top, y1 - y0) > 0
            if same_row and -1e-3 <= x0 - right <= ROW_GAP:
                rows[-1].append(node)
                right, top, bottom = max(right, x1), min(top, y0), max(bottom, y1)
                continue
        rows.append([node])
        right, top, bottom = x1, y0, y1
        previous_one_line = single
    return rows


def page_units(columns: RegionColumns, level: Level,
               merge_gap: float = BLOCK_GAP_LINES) -> Units:
    """The units of ``level`` on one page, in reading order.

    At the paragraph and block levels, the cells of a table row are one unit.
    """
    if level in ("paragraph", "block"):
        runs = table_rows(columns, columns.top_level().tolist())
        if level == "block":
            blocks = merge_adjacent(group_boxes(columns.boxes, runs), list(range(len(runs))),
                                    merge_gap * _line_height(columns))
            runs = [[n for r in block for n in runs[r]] for block in blocks]
        boxes = group_boxes(columns.boxes, runs).astype(np.float32).reshape(-1, 4)
        return Units(columns, runs, boxes, "paragraph")
    nodes = columns.units(level)  # type: ignore[arg-type]
    return Units(columns, [[int(i)] for i in nodes], columns.boxes[nodes].astype(np.float32),
                 level)  # type: ignore[arg-type]

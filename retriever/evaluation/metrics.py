"""Retrieval and grounding metrics over normalized boxes ``[x0, y0, x1, y1]``.

Page metrics (recall@k, MRR) need only the rank of the right page. Region metrics are
measured *given the right page*: they use the regions a system returned for that page,
wherever it ranked among the top k, so a retrieval miss does not also count as a
grounding miss. Definitions (the report's columns):

* ``iou``: IoU of the top region with the answer box (0 when no region was returned).
* ``top@t``: the top region's IoU >= t. ``best@t``: the best IoU among all selected regions
  >= t (Snappy's metric; selecting more regions can only raise it, hence both).
* ``precision``: fraction of the selected regions that *match* the answer: IoU >= 0.5 with
  it, or at least half of the region's own area inside it (a line of the answering
  paragraph is a match, a neighbouring paragraph is not). 0 when nothing was selected.
* ``area``: fraction of the page covered by the union of the selected regions (what a
  reader, or an LLM given the crops, has to look at).
"""

from __future__ import annotations

__all__ = [
    "HIT_THRESHOLDS",
    "RECALL_KS",
    "MATCH_INSIDE",
    "MATCH_IOU",
    "GroundingScore",
    "area",
    "best_iou",
    "grounding_score",
    "inside_fraction",
    "intersection",
    "iou",
    "mean_metrics",
    "reciprocal_rank",
    "recall_at",
    "region_matches",
    "union_area",
]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Box = Sequence[float]

HIT_THRESHOLDS: tuple[float, ...] = (0.25, 0.5, 0.7)
RECALL_KS: tuple[int, ...] = (1, 5, 10)
MATCH_IOU = 0.5
MATCH_INSIDE = 0.5


def area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def intersection(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def iou(a: Box, b: Box) -> float:
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def inside_fraction(region: Box, answer: Box) -> float:
    """Share of ``region``'s own area that lies inside ``answer`` (0 for an empty region)."""
    own = area(region)
    return intersection(region, answer) / own if own > 0 else 0.0


def region_matches(region: Box, answer: Box) -> bool:
    return iou(region, answer) >= MATCH_IOU or inside_fraction(region, answer) >= MATCH_INSIDE


def best_iou(regions: Iterable[Box], answer: Box) -> float:
    return max((iou(r, answer) for r in regions), default=0.0)


def union_area(boxes: Sequence[Box]) -> float:
    """Exact area of the union of boxes, by coordinate compression (n is small here)."""
    boxes = [b for b in boxes if area(b) > 0]
    if not boxes:
        return 0.0
    xs = sorted({v for b in boxes for v in (b[0], b[2])})
    ys = sorted({v for b in boxes for v in (b[1], b[3])})
    total = 0.0
    for x0, x1 in zip(xs, xs[1:]):
        cx = (x0 + x1) / 2
        for y0, y1 in zip(ys, ys[1:]):
            cy = (y0 + y1) / 2
            if any(b[0] <= cx <= b[2] and b[1] <= cy <= b[3] for b in boxes):
                total += (x1 - x0) * (y1 - y0)
    return total


def reciprocal_rank(rank: int | None, k: int) -> float:
    """1/rank for a rank within the top ``k`` (1-based), else 0."""
    return 1.0 / rank if rank is not None and 1 <= rank <= k else 0.0


def recall_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and 1 <= rank <= k else 0.0


@dataclass(frozen=True)
class GroundingScore:
    """Region metrics of one query on its right page (see the module docstring)."""

    iou: float
    best_iou: float
    precision: float
    area: float
    selected: int

    def as_dict(self) -> dict[str, float]:
        out = {"iou": self.iou, "precision": self.precision, "area": self.area,
               "selected": float(self.selected)}
        for t in HIT_THRESHOLDS:
            out[f"top@{t:g}"] = float(self.iou >= t)
            out[f"best@{t:g}"] = float(self.best_iou >= t)
        return out


def grounding_score(selected: Sequence[Box], answer: Box) -> GroundingScore:
    """Score the regions a system returned for the right page, best first."""
    if not selected:
        return GroundingScore(0.0, 0.0, 0.0, 0.0, 0)
    matched = sum(region_matches(r, answer) for r in selected)
    return GroundingScore(
        iou=iou(selected[0], answer),
        best_iou=best_iou(selected, answer),
        precision=matched / len(selected),
        area=min(1.0, union_area(selected)),
        selected=len(selected),
    )


def mean_metrics(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each key over the rows (keys missing from a row are skipped for it)."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    out: dict[str, float] = {}
    for key in keys:
        values = [row[key] for row in rows if key in row]
        out[key] = sum(values) / len(values) if values else 0.0
    return out

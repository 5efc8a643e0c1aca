"""From per-query outcomes to report rows (system x query kind), as a table or JSON.

Row fields (``--json`` prints one row object per line):

``system``, ``kind`` (query kind, with ``/split`` when the queries have one), ``queries``,
``recall@1/5/10`` and ``mrr`` (page found within the top k), ``grounded`` (queries with a
box whose page was found in the top k: the base of the region metrics), then the region
metrics of ``metrics.py``: ``iou``, ``top@0.25/0.5/0.7``, ``best@0.25/0.5/0.7``,
``precision``, ``area`` and ``selected`` (mean regions returned). Region metrics are null
for a system that returns no regions (BM25).
"""

from __future__ import annotations

__all__ = ["Outcome", "format_table", "summarize"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .metrics import (
    HIT_THRESHOLDS,
    RECALL_KS,
    GroundingScore,
    mean_metrics,
    recall_at,
    reciprocal_rank,
)
from .queries import Query

_KIND_ORDER = ("phrase", "keywords")


@dataclass(frozen=True)
class Outcome:
    """What one system did with one query."""

    system: str
    query: Query
    truth: str  # page key of the answer
    rank: int | None  # 1-based rank of the truth page, None when not in the top k
    grounding: GroundingScore | None  # None: no box in the truth, or page not found
    returns_regions: bool
    top_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"system": self.system, "query": self.query.to_dict(),
                               "truth": self.truth, "rank": self.rank, "top": self.top_key}
        if self.grounding is not None:
            out["grounding"] = self.grounding.as_dict()
        return out


def _group_order(group: str) -> tuple[int, str]:
    kind = group.split("/", 1)[0]
    return (_KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER), group)


def summarize(outcomes: Sequence[Outcome], k: int, systems: Sequence[str]) -> list[dict[str, Any]]:
    """One row per system and query group, systems in the order given."""
    groups = sorted({o.query.group for o in outcomes}, key=_group_order)
    rows = []
    for system in systems:
        for group in groups:
            mine = [o for o in outcomes if o.system == system and o.query.group == group]
            if not mine:
                continue
            row: dict[str, Any] = {"system": system, "kind": group, "queries": len(mine)}
            for at in (n for n in RECALL_KS if n <= k):
                row[f"recall@{at}"] = sum(recall_at(o.rank, at) for o in mine) / len(mine)
            row["mrr"] = sum(reciprocal_rank(o.rank, k) for o in mine) / len(mine)
            grounded = [o.grounding.as_dict() for o in mine if o.grounding is not None]
            row["grounded"] = len(grounded)
            means = mean_metrics(grounded) if grounded and mine[0].returns_regions else {}
            for name in _region_columns():
                row[name] = means.get(name)
            rows.append(row)
    return rows


def _region_columns() -> list[str]:
    return ["iou", *(f"top@{t:g}" for t in HIT_THRESHOLDS),
            *(f"best@{t:g}" for t in HIT_THRESHOLDS), "precision", "area", "selected"]


_HEADERS = {"recall@1": "p@1", "recall@5": "p@5", "recall@10": "p@10", "mrr": "MRR",
            "grounded": "n_grd", "iou": "IoU", "top@0.25": "top.25", "top@0.5": "top.5",
            "top@0.7": "top.7", "best@0.25": "best.25", "best@0.5": "best.5",
            "best@0.7": "best.7", "precision": "prec", "area": "area", "selected": "n_sel"}


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: one line per row, numbers to two or three decimals."""
    if not rows:
        return "no results"
    columns = ["system", "kind", "queries",
               *(c for c in _HEADERS if any(c in r for r in rows))]
    header = [_HEADERS.get(c, c) for c in columns]

    def cell(value: Any, column: str) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.1f}" if column == "selected" else f"{value:.3f}"
        return str(value)

    body = [[cell(r.get(c), c) for c in columns] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(header)]
    text_cols = {0, 1}

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if i in text_cols else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, body)])

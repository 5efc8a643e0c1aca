"""Evaluation metrics on hand-made boxes and ranks, and the rows they roll up into."""

from __future__ import annotations

import pytest

from retriever.evaluation.metrics import (
    grounding_score,
    inside_fraction,
    iou,
    mean_metrics,
    recall_at,
    reciprocal_rank,
    region_matches,
    union_area,
)
from retriever.evaluation.queries import Query
from retriever.evaluation.report import Outcome, format_table, summarize


def test_iou_of_identical_disjoint_and_half_overlapping_boxes():
    box = (0.1, 0.1, 0.5, 0.5)
    assert iou(box, box) == pytest.approx(1.0)
    assert iou(box, (0.6, 0.6, 0.9, 0.9)) == 0.0
    assert iou(box, (0.5, 0.1, 0.9, 0.5)) == 0.0  # touching edges share no area
    # (0.1..0.5) x (0.1..0.5) vs (0.3..0.7) x (0.1..0.5): inter 0.08, union 0.24
    assert iou(box, (0.3, 0.1, 0.7, 0.5)) == pytest.approx(1 / 3)
    assert iou((0.2, 0.2, 0.2, 0.4), box) == 0.0  # a degenerate box has no area


def test_inside_fraction_and_matching_rule():
    paragraph = (0.1, 0.1, 0.9, 0.5)
    line = (0.1, 0.2, 0.9, 0.25)  # one line of the paragraph: small IoU, wholly inside
    assert iou(line, paragraph) < 0.5
    assert inside_fraction(line, paragraph) == pytest.approx(1.0)
    assert region_matches(line, paragraph)
    neighbour = (0.1, 0.45, 0.9, 0.7)  # overlaps the bottom edge a little
    assert not region_matches(neighbour, paragraph)
    assert region_matches(paragraph, paragraph)


def test_union_area_counts_overlaps_once():
    assert union_area([]) == 0.0
    assert union_area([(0, 0, 0.5, 0.5)]) == pytest.approx(0.25)
    assert union_area([(0, 0, 0.5, 0.5), (0, 0, 0.5, 0.5)]) == pytest.approx(0.25)
    assert union_area([(0, 0, 0.5, 0.5), (0.25, 0, 0.75, 0.5)]) == pytest.approx(0.375)
    assert union_area([(0, 0, 1, 1), (0.2, 0.2, 0.3, 0.3)]) == pytest.approx(1.0)


def test_recall_and_reciprocal_rank():
    assert recall_at(1, 1) == 1.0 and recall_at(2, 1) == 0.0 and recall_at(None, 10) == 0.0
    assert recall_at(5, 5) == 1.0 and recall_at(6, 5) == 0.0
    assert reciprocal_rank(1, 10) == 1.0
    assert reciprocal_rank(4, 10) == pytest.approx(0.25)
    assert reciprocal_rank(11, 10) == 0.0 and reciprocal_rank(None, 10) == 0.0


def test_grounding_score_top_versus_best_of_selected():
    answer = (0.1, 0.4, 0.9, 0.6)
    heading = (0.1, 0.3, 0.5, 0.35)  # ranked first, but not the answer
    selected = [heading, answer, (0.1, 0.45, 0.9, 0.5)]
    score = grounding_score(selected, answer)
    assert score.iou == 0.0 and score.best_iou == pytest.approx(1.0)
    assert score.precision == pytest.approx(2 / 3)  # the answer and a line inside it
    assert score.area == pytest.approx(0.4 * 0.05 + 0.8 * 0.2)  # the inner line adds nothing
    hits = score.as_dict()
    assert hits["top@0.5"] == 0.0 and hits["best@0.5"] == 1.0 and hits["best@0.7"] == 1.0
    empty = grounding_score([], answer)
    assert (empty.iou, empty.precision, empty.area, empty.selected) == (0.0, 0.0, 0.0, 0)


def test_mean_metrics_skips_missing_keys():
    assert mean_metrics([{"a": 1.0, "b": 0.0}, {"a": 0.0}]) == {"a": 0.5, "b": 0.0}


def _outcome(system: str, kind: str, rank: int | None, selected=(), returns=True) -> Outcome:
    box = (0.1, 0.1, 0.9, 0.3)
    query = Query(text="q", source="a.pdf", page=1, bbox=box, kind=kind)
    grounding = grounding_score(list(selected), box) if rank is not None and returns else None
    return Outcome(system, query, "doc:1", rank, grounding, returns)


def test_summarize_rows_per_system_and_kind():
    box = (0.1, 0.1, 0.9, 0.3)
    outcomes = [
        _outcome("ours", "phrase", 1, [box]),
        _outcome("ours", "phrase", 3, [(0.1, 0.5, 0.9, 0.6), box]),
        _outcome("ours", "question", None),
        _outcome("bm25", "phrase", 2, returns=False),
        _outcome("bm25", "question", 1, returns=False),
    ]
    rows = summarize(outcomes, 10, ["ours", "bm25"])
    assert [(r["system"], r["kind"]) for r in rows] == [
        ("ours", "phrase"), ("ours", "question"), ("bm25", "phrase"), ("bm25", "question")]
    ours = rows[0]
    assert ours["queries"] == 2 and ours["recall@1"] == 0.5 and ours["recall@5"] == 1.0
    assert ours["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert ours["grounded"] == 2 and ours["iou"] == pytest.approx(0.5)
    assert ours["best@0.5"] == 1.0 and ours["precision"] == pytest.approx(0.75)
    assert rows[1]["recall@10"] == 0.0 and rows[1]["iou"] is None
    assert rows[2]["iou"] is None and rows[3]["recall@1"] == 1.0
    table = format_table(rows)
    assert table.splitlines()[0].split()[:4] == ["system", "kind", "queries", "p@1"]
    assert len(table.splitlines()) == 2 + len(rows)

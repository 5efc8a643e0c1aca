"""Every grounding option: levels, selection rules, overlap, merging, lexical evidence."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.errors import UsageError
from retriever.grounding import GroundingOptions, ground, resolve_options
from retriever.grounding.select import select_units
from retriever.regions.columns import LazyRegions, RegionColumns
from retriever.types import MultiVector, Region

DIM = 8


def _unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i] = 1.0
    return v


def _line(box, words: str) -> Region:
    x0, y0, x1, y1 = box
    parts = words.split()
    step = (x1 - x0) / len(parts)
    kids = tuple(Region((x0 + i * step, y0, x0 + (i + 1) * step, y1), w, level="word",
                        source="text_layer") for i, w in enumerate(parts))
    return Region(box, words, level="line", source="text_layer", children=kids)


def _paragraph(y0: float, texts: list[str], x0: float = 0.1, x1: float = 0.9) -> Region:
    lines = [_line((x0, y0 + 0.03 * i, x1, y0 + 0.03 * i + 0.02), t) for i, t in enumerate(texts)]
    box = (x0, y0, x1, lines[-1].bbox[3])
    return Region(box, " ".join(texts), source="text_layer", children=tuple(lines))


def _page(paragraphs: list[Region], directions: list[list[int]]) -> MultiVector:
    """One vector per line, in the direction given per paragraph and line."""
    vectors, boxes = [], []
    for para, dirs in zip(paragraphs, directions):
        for line, d in zip(para.lines, dirs):
            vectors.append(_unit(d))
            boxes.append(line.bbox)
    return MultiVector(np.array(vectors), np.array(boxes, np.float32))


def _query(*dims: int, weights=None) -> MultiVector:
    v = np.zeros(DIM, np.float32)
    for d, w in zip(dims, weights or [1.0] * len(dims)):
        v[d] = w
    v /= np.linalg.norm(v)
    return MultiVector(v[None, :], np.array([[0, 0, 1, 1]], np.float32))


# five paragraphs far apart (no merging), each with two lines
FAR = [_paragraph(0.05 + 0.18 * i, [f"p{i} first line", f"p{i} second line"]) for i in range(5)]


def test_options_are_checked_and_zero_means_no_cap():
    assert GroundingOptions(max_regions=0).max_regions is None
    for bad in ({"level": "sentence"}, {"select": "best"}, {"aggregate": "median"},
                {"percentile": 120}, {"margin": -1}, {"min_overlap": 1.5},
                {"max_regions": -2}, {"max_regions": 2.5}, {"lexical_weight": 2},
                {"merge": "yes"}, {"merge_gap": -1}):
        with pytest.raises(UsageError):
            GroundingOptions(**bad)
    with pytest.raises(UsageError, match="unknown grounding option"):
        resolve_options({"levle": "line"})
    with pytest.raises(UsageError):
        resolve_options("paragraph")  # type: ignore[arg-type]
    base = GroundingOptions(level="line")
    assert base.with_(select=None, margin=None) is base  # unset flags change nothing
    assert resolve_options(base, max_regions=2) == GroundingOptions(level="line", max_regions=2)
    assert resolve_options({"select": "gap"}).select == "gap"


def _select(scores, **kw) -> list[int]:
    return select_units(np.asarray(scores, np.float32), GroundingOptions(**kw)).tolist()


def test_selection_rules():
    scores = [0.4, 1.0, np.nan, 0.9, 0.1, 0.5]  # median of the scored: 0.5
    assert _select(scores, select="top_k", max_regions=3) == [1, 3, 5]
    assert _select(scores, select="top_k", max_regions=None) == [1, 3, 5, 0, 4]
    assert _select(scores, select="percentile", percentile=50, max_regions=None) == [1, 3, 5]
    assert _select(scores, select="percentile", percentile=0, max_regions=None) == [1, 3, 5, 0, 4]
    # margin in units of (best - median) = 0.5: 0.3 keeps >= 0.85, 1.0 keeps >= the median
    assert _select(scores, select="margin", margin=0.3, max_regions=None) == [1, 3]
    assert _select(scores, select="margin", margin=1.0, max_regions=None) == [1, 3, 5]
    assert _select(scores, select="margin", margin=0.0, max_regions=None) == [1]
    # gap: the largest drop among the best (max_regions + 1) is after 0.9
    assert _select(scores, select="gap", max_regions=5) == [1, 3]
    assert _select([0.9, 0.8, 0.7, 0.1], select="gap", max_regions=2) == [0, 1]
    assert _select([np.nan, np.nan], select="margin") == []
    assert _select([0.3], select="gap") == [0]
    # every rule is capped
    assert _select(scores, select="percentile", percentile=0, max_regions=2) == [1, 3]


def test_ties_keep_reading_order():
    assert _select([0.5, 0.9, 0.9, 0.9], select="top_k", max_regions=2) == [1, 2]


def test_levels_paragraph_line_word():
    page = _page(FAR, [[0, 1], [2, 3], [4, 4], [5, 5], [6, 6]])
    q = _query(3)
    para = ground(q, page, FAR, level="paragraph", select="top_k", max_regions=1)
    assert para[0].text == "p1 first line p1 second line" and para[0].level == "paragraph"
    line = ground(q, page, FAR, level="line", select="top_k", max_regions=1)
    assert line[0].text == "p1 second line" and line[0].level == "line"
    assert line[0].bbox == FAR[1].lines[1].bbox
    words = ground(q, page, FAR, level="word", select="top_k", max_regions=3)
    assert {h.text for h in words} == {"p1", "second", "line"}
    assert all(h.level == "word" for h in words)


def test_block_level_merges_close_paragraphs_of_one_column():
    # a paragraph is 0.05 tall, a line 0.02: 0.07 apart leaves a gap of one line height
    close = [_paragraph(0.10, ["a one", "a two"]), _paragraph(0.17, ["b one", "b two"]),
             _paragraph(0.60, ["c one", "c two"]),
             _paragraph(0.67, ["d one", "d two"], x0=0.6, x1=0.9)]
    page = _page(close, [[0, 0], [0, 1], [2, 2], [3, 3]])
    hits = ground(_query(0), page, close, level="block", select="top_k", max_regions=None)
    texts = [h.text for h in hits]
    assert texts[0] == "a one a two b one b two"  # 0.03 apart: one block
    assert hits[0].bbox == (0.1, 0.1, 0.9, close[1].bbox[3])
    assert "c one c two d one d two" in texts  # d lies under the right half of c
    apart = ground(_query(0), page, close, level="block", merge_gap=0.0, select="top_k",
                   max_regions=None)
    assert len(apart) == 4  # a gap of zero line heights merges nothing


def test_table_cells_on_one_row_are_one_unit():
    cells = [Region((x, 0.30, x + 0.08, 0.32), t, source="text_layer",
                    children=(Region((x, 0.30, x + 0.08, 0.32), t, level="line",
                                     source="text_layer"),))
             for x, t in ((0.10, "North"), (0.30, "18.9"), (0.50, "22.8"))]
    cells.append(_paragraph(0.6, ["below the table"]))
    vectors = np.stack([_unit(0), _unit(1), _unit(1), _unit(2)])
    boxes = np.array([c.bbox for c in cells], np.float32)
    hits = ground(_query(0), MultiVector(vectors, boxes), cells, select="top_k",
                  max_regions=None, merge=False)
    assert hits[0].text == "North 18.9 22.8" and hits[0].bbox == (0.10, 0.30, 0.58, 0.32)
    assert len(hits) == 2


def test_min_overlap_drops_vectors_that_only_graze_a_region():
    regions = [Region((0.0, 0.0, 1.0, 0.5), "upper"), Region((0.0, 0.5, 1.0, 1.0), "lower")]
    # one vector, 70% in "upper", 30% in "lower"
    page = MultiVector(_unit(0)[None, :], np.array([[0.0, 0.15, 0.5, 0.65]], np.float32))
    both = ground(_query(0), page, regions, select="top_k", max_regions=None, merge=False)
    assert {h.text for h in both} == {"upper", "lower"}
    strict = ground(_query(0), page, regions, select="top_k", max_regions=None,
                    min_overlap=0.5, merge=False)
    assert [h.text for h in strict] == ["upper"]
    assert ground(_query(0), page, regions, min_overlap=0.8) == []


def test_merge_joins_adjacent_kept_paragraphs_only():
    close = [_paragraph(0.10 + 0.07 * i, [f"p{i} a", f"p{i} b"]) for i in range(4)]
    page = _page(close, [[0, 0], [0, 0], [5, 5], [0, 0]])  # p0, p1 and p3 answer
    merged = ground(_query(0), page, close, select="top_k", max_regions=3, merge=True)
    assert [h.text for h in merged] == ["p0 a p0 b p1 a p1 b", "p3 a p3 b"]
    assert merged[0].bbox == (0.1, 0.1, 0.9, close[1].bbox[3])
    separate = ground(_query(0), page, close, select="top_k", max_regions=3, merge=False)
    assert len(separate) == 3
    # only regions within merge_margin of the best merge; the others stay single
    page2 = _page(close, [[0, 0], [1, 1], [5, 5], [6, 6]])
    q = _query(0, 1, weights=[1.0, 0.5])  # p1 scores 0.45, p0 0.89, p2/p3 0
    tight = ground(q, page2, close, select="top_k", max_regions=2, merge=True,
                   merge_margin=0.1)
    assert [h.text for h in tight] == ["p0 a p0 b", "p1 a p1 b"]
    loose = ground(q, page2, close, select="top_k", max_regions=2, merge=True,
                   merge_margin=1.0)
    assert [h.text for h in loose] == ["p0 a p0 b p1 a p1 b"]


def test_aggregate_mean_and_max():
    page = _page(FAR, [[0, 7], [0, 0], [4, 4], [5, 5], [6, 6]])
    q = _query(0)
    top_max = ground(q, page, FAR, aggregate="max", select="top_k", max_regions=2, merge=False)
    assert [h.score for h in top_max] == pytest.approx([1.0, 1.0])
    top_mean = ground(q, page, FAR, aggregate="mean", select="top_k", max_regions=2,
                      merge=False)
    assert top_mean[0].text.startswith("p1") and top_mean[1].score == pytest.approx(0.5)


def test_lexical_evidence_is_blended_by_its_weight():
    page = _page(FAR, [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]])
    q = _query(0, 1, weights=[1.0, 0.9])  # vectors prefer p0, then p1
    lexical = [0.0, 1.0, 0.0, 0.0, 0.0]  # the words are in p1
    opts = {"select": "top_k", "max_regions": 2, "merge": False}
    assert ground(q, page, FAR, **opts)[0].text.startswith("p0")
    for weight, first in ((0.0, "p0"), (0.5, "p1")):
        hits = ground(q, page, FAR, lexical=lexical, lexical_weight=weight, **opts)
        assert hits[0].text.startswith(first)
    only = ground(q, page, FAR, lexical=lexical, lexical_weight=1.0, **opts)
    assert only[0].score == pytest.approx(1.0)
    seen = []

    def scorer(texts):
        seen.append(list(texts))
        return [1.0 if "second" in t else 0.0 for t in texts]

    lines = ground(q, page, FAR, lexical=scorer, lexical_weight=1.0, level="line", **opts)
    assert all("second" in h.text for h in lines) and len(seen[0]) == 10
    with pytest.raises(ValueError, match="5 regions"):
        ground(q, page, FAR, lexical=[1.0, 0.0])
    # a line takes its paragraph's value when the evidence is per paragraph
    per_line = ground(q, page, FAR, lexical=lexical, lexical_weight=1.0, level="line", **opts)
    assert all(h.text.startswith("p1") for h in per_line)


def test_single_vector_pages_get_regions_in_reading_order():
    whole = MultiVector(_unit(0)[None, :] * 0.6 + _unit(1)[None, :] * 0.8,
                        np.array([[0, 0, 1, 1]], np.float32))
    hits = ground(_query(0), whole, FAR)  # default cap: 5
    assert [h.text.split()[0] for h in hits] == ["p0", "p1", "p2", "p3", "p4"]
    assert all(h.score == pytest.approx(0.6) for h in hits)  # the page's own similarity
    assert len(ground(_query(0), whole, FAR, max_regions=2)) == 2
    # lexical evidence, when given, is all there is: it ranks and selects as usual
    lexical = [0.0, 0.2, 0.0, 0.9, 0.0]
    assert [h.text.split()[0] for h in ground(_query(0), whole, FAR, lexical=lexical)] == ["p3"]
    ranked = ground(_query(0), whole, FAR, lexical=lexical, select="top_k", max_regions=2)
    assert [h.text.split()[0] for h in ranked] == ["p3", "p1"]
    # local vectors beside the global one: only the local ones say where
    mixed = MultiVector(np.stack([_unit(0), _unit(0)]),
                        np.array([[0, 0, 1, 1], FAR[2].lines[0].bbox], np.float32))
    assert [h.text.split()[0] for h in ground(_query(0), mixed, FAR)] == ["p2"]


def test_columns_and_lazy_regions_ground_like_regions_without_parsing():
    page = _page(FAR, [[0, 1], [2, 3], [4, 4], [5, 5], [6, 6]])
    want = ground(_query(3), page, FAR)
    assert ground(_query(3), page, RegionColumns.from_regions(FAR)) == want
    lazy = LazyRegions(LazyRegions.of(FAR).to_json())
    assert ground(_query(3), page, lazy) == want
    assert not lazy.parsed  # grounding read the columns, never built Region objects

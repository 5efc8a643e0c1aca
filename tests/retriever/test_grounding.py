"""Grounding spreads per-vector relevance onto regions by box overlap."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.grounding import ground, overlap_matrix, region_scores
from retriever.types import MultiVector, Region


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def test_overlap_is_fraction_of_each_vector_inside_each_region():
    regions = np.array([[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]], np.float32)
    vectors = np.array([
        [0.0, 0.0, 0.25, 0.5],   # inside region 0
        [0.25, 0.0, 0.75, 0.5],  # half in each
        [0.0, 0.0, 1.0, 1.0],    # whole page: no location, weight 0
        [0.8, 0.8, 0.8, 0.8],    # a point inside region 1
    ], np.float32)
    w = overlap_matrix(regions, vectors)
    np.testing.assert_allclose(w, [[1.0, 0.5, 0.0, 0.0], [0.0, 0.5, 0.0, 1.0]], atol=1e-6)


def test_region_scores_mean_and_max_and_no_evidence():
    relevance = np.array([0.9, 0.1, 0.5], np.float32)
    weights = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.5], [0.0, 0.0, 0.0]], np.float32)
    mean = region_scores(relevance, weights, "mean")
    np.testing.assert_allclose(mean[:2], [0.5, 0.5], atol=1e-6)
    assert np.isnan(mean[2])
    top = region_scores(relevance, weights, "max")
    np.testing.assert_allclose(top[:2], [0.9, 0.5], atol=1e-6)
    assert np.isnan(top[2])
    with pytest.raises(ValueError):
        region_scores(relevance, weights, "median")  # type: ignore[arg-type]


def _page_with_three_paragraphs():
    # Three paragraphs stacked vertically, each with two line vectors in its band.
    regions = [Region((0.1, 0.1 + 0.3 * i, 0.9, 0.3 + 0.3 * i), f"paragraph {i}") for i in range(3)]
    directions = [_unit(1, 0, 0), _unit(0, 1, 0), _unit(0, 0, 1)]
    vectors, boxes = [], []
    for i, direction in enumerate(directions):
        for j in range(2):
            y0 = 0.1 + 0.3 * i + 0.1 * j
            vectors.append(direction)
            boxes.append((0.1, y0, 0.9, y0 + 0.08))
    return regions, MultiVector(np.array(vectors), np.array(boxes))


def test_ground_returns_the_matching_paragraph_first_and_keeps_at_least_median():
    regions, page = _page_with_three_paragraphs()
    query = MultiVector(_unit(0.1, 1, 0)[None, :], np.array([[0, 0, 1, 1]], np.float32))
    hits = ground(query, page, regions, select="percentile")
    assert hits[0].text == "paragraph 1"
    assert hits[0].bbox == regions[1].bbox
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert 1 <= len(hits) <= 2  # the median keeps the top half (ties included)
    assert ground(query, page, regions, max_regions=1)[0].text == "paragraph 1"


def test_ground_multi_vector_query_takes_best_query_vector_per_patch():
    regions, page = _page_with_three_paragraphs()
    query = MultiVector(np.stack([_unit(0, 0, 1), _unit(1, 0, 0)]), np.zeros((2, 4), np.float32))
    hits = ground(query, page, regions, select="percentile", percentile=0)
    by_text = {h.text: h.score for h in hits}
    assert by_text["paragraph 0"] == pytest.approx(1.0)
    assert by_text["paragraph 2"] == pytest.approx(1.0)
    assert by_text["paragraph 1"] == pytest.approx(0.0, abs=1e-6)


def test_ground_empty_inputs_and_regions_without_vectors():
    regions, page = _page_with_three_paragraphs()
    query = MultiVector(_unit(1, 0, 0)[None, :], np.zeros((1, 4), np.float32))
    assert ground(query, page, []) == []
    assert ground(query, MultiVector.empty(3), regions) == []
    off_page = [Region((0.0, 0.95, 0.05, 1.0), "footer")]
    assert ground(query, page, off_page) == []


def test_regions_tied_at_the_bottom_are_not_returned():
    regions = [Region((0.0, 0.1 * i, 1.0, 0.1 * i + 0.05), f"r{i}") for i in range(5)]
    vectors = np.eye(5, dtype=np.float32)
    boxes = np.asarray([r.bbox for r in regions], np.float32)
    page = MultiVector(vectors, boxes)
    query = MultiVector(np.eye(5, dtype=np.float32)[:1], np.zeros((1, 4), np.float32))
    hits = ground(query, page, regions, select="percentile")
    assert [h.text for h in hits] == ["r0"]  # the four zero-score regions are dropped

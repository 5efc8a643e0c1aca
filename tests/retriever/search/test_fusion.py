"""Per-region lexical evidence and the fusion rule (retriever.search.evidence / fusion)."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.protocols import RegionScore, ScoredPage
from retriever.search import fusion
from retriever.search.evidence import PageEvidence, page_evidence, region_evidence
from retriever.search.lexical import analyze
from retriever.types import Region


def _vector(*scores: float) -> list[ScoredPage]:
    return [ScoredPage(f"p:{i}", s) for i, s in enumerate(scores)]


def _evidence(score: float, coverage: float) -> PageEvidence:
    return PageEvidence(np.array([score], np.float32), np.array([coverage], np.float32))


TWELVE = (0.9, 0.8, 0.75, 0.7, 0.68, 0.66, 0.64, 0.62, 0.6, 0.58, 0.5, 0.4)


def test_without_lexical_evidence_the_vector_order_stays():
    fused = fusion.fuse(_vector(*TWELVE), {}, 5)
    assert [f.key for f in fused] == [f"p:{i}" for i in range(5)]
    assert fused[0].score == 0.0 and all(f.lexical is None for f in fused)


def test_a_region_holding_the_query_words_decides_over_vectors():
    # the 11th vector page has every query word in one region: it comes first
    evidence = {"p:10": _evidence(1.0, 1.0), "p:0": _evidence(0.2, 0.3)}
    assert fusion.lexical_weight(evidence) == fusion.HIGH
    assert fusion.fuse(_vector(*TWELVE), evidence, 3, pages=100)[0].key == "p:10"


def test_weak_lexical_evidence_only_reorders_near_ties():
    # coverage at most 0.5 (a paraphrased question): lambda is LOW, and evidence 0.2 is
    # worth 0.6 of a spread (the gap between the 1st and the 11th vector page)
    near = {"p:1": _evidence(0.2, 0.5)}
    far = {"p:10": _evidence(0.2, 0.5)}
    assert fusion.lexical_weight(near) == fusion.LOW
    assert fusion.fuse(_vector(*TWELVE), near, 1, pages=100)[0].key == "p:1"  # 0.25 spreads behind
    assert fusion.fuse(_vector(*TWELVE), far, 1, pages=100)[0].key == "p:0"  # a whole spread behind


def test_in_a_small_collection_the_vector_gap_is_measured_closer_to_the_top():
    # 7 pages: the yardstick is the next page (a fifth of the collection), not the last
    vector = _vector(0.686, 0.493, 0.322, 0.321, 0.252, 0.246, 0.123)
    evidence = {"p:0": _evidence(0.444, 0.503), "p:1": _evidence(0.703, 0.406)}
    assert fusion.fuse(vector, evidence, 1, pages=7)[0].key == "p:0"
    assert fusion.fuse(vector, evidence, 1, pages=100)[0].key == "p:1"  # 11th: the last


def test_lambda_grows_with_coverage_between_the_thresholds():
    mid = (fusion.C_LOW + fusion.C_HIGH) / 2
    assert fusion.lexical_weight({}) == fusion.LOW
    assert fusion.lexical_weight({"a": _evidence(1, mid)}) == pytest.approx(
        (fusion.LOW + fusion.HIGH) / 2)


def test_a_page_found_only_by_lexical_search_gets_the_lowest_vector_score():
    fused = fusion.fuse(_vector(*TWELVE), {"other:1": _evidence(0.9, 0.95)}, 20)
    assert {f.key for f in fused} == {f"p:{i}" for i in range(12)} | {"other:1"}
    assert fused[0].key == "other:1" and fused[0].lexical is not None


def test_lexical_mode_ranks_by_evidence_and_leaves_out_pages_without():
    evidence = {"a:1": _evidence(0.4, 0.5), "b:1": _evidence(0.9, 1.0), "c:1": _evidence(0, 0)}
    assert [f.key for f in fusion.rank_lexical(evidence, 5)] == ["b:1", "a:1"]


def test_page_evidence_scales_bm25_by_the_best_region_and_adds_coverage():
    query = analyze("lazy dog")
    terms = {"a:1": ["quick brown fox", "lazy dog"], "a:2": ["lazy cat", "dog house"]}
    hits = [RegionScore("a:1", 1, 2.0), RegionScore("a:2", 0, 1.0), RegionScore("a:2", 1, 0.5)]
    found = page_evidence(query, terms, hits)
    assert found["a:1"].coverage.tolist() == [0.0, 1.0]
    assert found["a:1"].regions.tolist() == [0.0, 1.0] and found["a:1"].score == 1.0
    a2 = found["a:2"]
    assert a2.coverage[0] == pytest.approx(0.5) and a2.coverage[1] == pytest.approx(0.5)
    assert a2.regions.tolist() == pytest.approx([(0.5 + 0.5) / 2, (0.25 + 0.5) / 2])


def test_region_evidence_is_aligned_with_a_pages_regions():
    regions = [Region((0, 0, 1, 0.1), "Invoice 2024-117"),
               Region((0, 0.2, 1, 0.3), "Payment is due within 30 days by bank transfer"),
               Region((0, 0.4, 1, 0.5), "Thank you")]
    values = region_evidence("when is payment due?", regions)
    assert values.shape == (3,) and values.argmax() == 1 and values[1] == pytest.approx(1.0)
    assert values[0] == values[2] == 0.0

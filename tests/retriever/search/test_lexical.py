"""The shared text analyzer and the in-memory BM25 that FAISS collections search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retriever.regions.columns import LazyRegions
from retriever.search.bm25 import B, BM25, K1
from retriever.search.lexical import analyze, region_terms, stem, terms, top_level_texts
from retriever.types import Region


@pytest.mark.parametrize("forms", [
    ("encode", "encoded", "encodes", "encoding"),
    ("library", "libraries"),
    ("match", "matches"),
    ("run", "running"),
    ("separator", "separators"),
    ("quote", "quoted", "quotes", "quoting"),
])
def test_inflections_of_a_word_share_one_term(forms):
    assert len({stem(w) for w in forms}) == 1


def test_terms_drop_stop_and_question_words_and_fold_case_and_accents():
    assert terms("How does the Café handle IFS_Value?") == ["caf", "handl", "ifs", "valu"]
    assert terms("what is it") == []


def test_query_analysis_keeps_order_and_knows_a_question():
    q = analyze("Which variable sets the separators?")
    assert q.terms == ("variabl", "set", "separator") and q.question
    assert q.bigrams == (("variabl", "set"), ("set", "separator"))
    assert not analyze("IFS separators").question
    assert analyze("set set IFS").match_text() == "set ifs"


def _page() -> list[Region]:
    line = Region((0.1, 0.1, 0.9, 0.2), "Payment is due", level="line", source="text_layer")
    return [Region((0.1, 0.1, 0.9, 0.2), "Payment is due", children=(line,),
                   source="text_layer"),
            Region((0.1, 0.3, 0.9, 0.4), "the", source="text_layer"),  # nothing left
            Region((0.1, 0.5, 0.9, 0.6), "IBAN DE44 5001", source="text_layer")]


def test_region_terms_align_with_the_top_level_regions_stored_or_not():
    regions = _page()
    expected = ["payment due", "", "iban de44 5001"]
    assert region_terms(regions) == expected
    stored = LazyRegions.of(regions)
    assert top_level_texts(stored) == [r.text for r in regions]
    assert region_terms(stored) == expected


def _bm25_by_hand(docs: list[list[str]], query: list[str]) -> np.ndarray:
    n, avg = len(docs), sum(map(len, docs)) / len(docs)
    out = np.zeros(n)
    for t in set(query):
        df = sum(t in d for d in docs)
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(t)
            out[i] += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(d) / avg))
    return out


def test_bm25_over_regions_scores_like_the_formula_and_names_the_region():
    pages = {"a:1": ["quick brown fox", "lazy dog"], "a:2": ["lazy lazy dog sleeps", ""],
             "b:1": ["quick thinking"]}
    index = BM25(pages)
    query = analyze("lazy dog quick")
    hits = index.search([query], 10)[0]
    docs = [t.split() for regions in pages.values() for t in regions]
    where = [(k, r) for k, regions in pages.items() for r in range(len(regions))]
    expected = _bm25_by_hand(docs, list(query.terms))
    assert [(h.key, h.region) for h in hits] == [where[i] for i in np.argsort(-expected)
                                                 if expected[i] > 0]
    assert [h.score for h in hits] == pytest.approx(sorted(expected[expected > 0])[::-1],
                                                    rel=1e-5)
    assert index.search([analyze("zebra"), analyze("the")], 5) == [[], []]
    assert index.page_terms(["b:1", "nope:1"]) == {"b:1": ["quick thinking"]}

"""Per-region lexical evidence on the pages a full-text search found.

Two measures per top-level region (aligned with ``record.regions``), both in [0, 1]:

* ``bm25``: the region's BM25 (from the store's full-text index over regions) divided by
  the best region's BM25 for this query anywhere in the collection.
* ``coverage``: the share of the query's IDF mass whose terms all occur in this one
  region, order ignored. It says "the query's words are here together", which BM25 (a
  sum over terms, saturated per term) does not: a region holding every rare query word
  once beats one repeating two of them.

IDF here is local: document frequencies over the candidate pages' regions-as-a-page, not
over the collection. A store's full-text index does not hand out document frequencies,
and among the candidates local IDF does what IDF is for: a word that every candidate
shares cannot tell them apart (measured: the same page@1 as collection-wide IDF on the
tuning sets, see ``fusion.py``).

A region's evidence is the mean of the two; a page's is its best region's.
"""

from __future__ import annotations

__all__ = ["PageEvidence", "page_evidence", "region_evidence"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..protocols import RegionScore
from .lexical import QueryTerms, analyze, region_terms


@dataclass(frozen=True)
class PageEvidence:
    """The lexical evidence of one page for one query."""

    regions: np.ndarray  # (R,) per top-level region, in [0, 1]
    coverage: np.ndarray  # (R,) per region, the share of the query's IDF mass in it

    @property
    def score(self) -> float:
        """The page's lexical evidence: its best region's."""
        return float(self.regions.max()) if self.regions.size else 0.0


def _held(query: QueryTerms, regions: Sequence[str]) -> np.ndarray:
    """(R, T) whether each region (its terms joined by spaces) holds each unique query
    term; a substring test on space-padded text, which is a word test and needs no split."""
    needles = [f" {t} " for t in query.unique]
    padded = [f" {text} " for text in regions]
    return np.array([[n in text for n in needles] for text in padded], bool).reshape(
        len(regions), len(needles))


def _idf(held: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(T,) IDF of the query's terms over pages (``held`` rows grouped by ``starts``)."""
    n = starts.size - 1
    if n == 0 or held.shape[0] == 0:
        return np.zeros(held.shape[1])
    per_page = np.logical_or.reduceat(held, starts[:-1].clip(max=held.shape[0] - 1), axis=0)
    per_page[starts[:-1] == starts[1:]] = False  # a page without regions holds nothing
    df = per_page.sum(axis=0).astype(np.float64)  # (T,)
    return np.log1p((n - df + 0.5) / (df + 0.5)) * (df > 0)


def _coverage(held: np.ndarray, idf: np.ndarray) -> np.ndarray:
    total = float(idf.sum())
    if total <= 0:
        return np.zeros(held.shape[0], np.float32)
    return (held @ idf / total).astype(np.float32)


def page_evidence(query: QueryTerms, terms: Mapping[str, Sequence[str]],
                  hits: Sequence[RegionScore]) -> dict[str, PageEvidence]:
    """Evidence for each page of ``terms`` (key -> its regions' terms) from the region
    hits of one query; IDF over exactly these pages."""
    keys = list(terms)
    flat = [text for key in keys for text in terms[key]]
    starts = np.cumsum([0] + [len(terms[key]) for key in keys])  # (P+1,)
    held = _held(query, flat)  # (all regions, T): every page in one pass
    coverage = _coverage(held, _idf(held, starts))
    scaled = np.zeros(len(flat), np.float32)  # (all regions,)
    best = max((h.score for h in hits), default=0.0)
    position = {key: i for i, key in enumerate(keys)}
    for h in reversed(hits):  # best last, so the best score of a region stays
        p = position.get(h.key)
        if p is not None and 0 <= h.region < starts[p + 1] - starts[p] and best > 0:
            scaled[starts[p] + h.region] = h.score / best
    mixed = (scaled + coverage) / 2
    return {key: PageEvidence(mixed[starts[i]:starts[i + 1]], coverage[starts[i]:starts[i + 1]])
            for i, key in enumerate(keys)}


def region_evidence(query: str, regions: Sequence[object]) -> np.ndarray:
    """Coverage of ``query`` by each top-level region of one page, in [0, 1], aligned
    with ``regions`` (a page's ``Region`` list or a record's stored regions); IDF over the
    page's own regions. For callers grounding a page they already have."""
    held = _held(analyze(query), region_terms(regions))  # each region counts as a page
    return _coverage(held, _idf(held, np.arange(held.shape[0] + 1)))

"""The search driver the SDK calls: vector, lexical or hybrid ranking of pages.

``rank`` returns, per query, the query vector grounding should use and the ranked pages,
each with its per-region lexical evidence (aligned with ``record.regions``) when it has
some, so grounding can blend it with the vector evidence. Modes:

* ``vector``: the indexer's MaxSim search, as before hybrid search existed.
* ``lexical``: BM25 over regions plus coverage (``evidence.py``); no query encoding, so no
  model is loaded. Grounding then ranks regions by lexical evidence alone.
* ``hybrid`` (default): both, fused by ``fusion.fuse``.

An indexer without a full-text index (``LexicalIndexer``), or one whose index cannot be
built (an older read-only collection), gives vector results with a one-line warning.
"""

from __future__ import annotations

__all__ = ["MODES", "Mode", "Ranking", "check_mode", "rank", "grounding_for"]

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import RetrieverError, UsageError
from ..protocols import Encoder, Indexer, LexicalIndexer, RegionScore
from ..types import WHOLE_PAGE, MultiVector
from . import fusion
from .evidence import PageEvidence, page_evidence
from .lexical import QueryTerms, analyze

Mode = Literal["hybrid", "vector", "lexical"]
MODES: tuple[str, ...] = ("hybrid", "vector", "lexical")

_log = logging.getLogger("retriever.search")
_warned: set[int] = set()  # indexers already warned about, so a batch warns once


@dataclass
class Ranking:
    """One query's ranked pages and the query vector to ground them with."""

    query_vector: MultiVector
    pages: list[fusion.Fused]


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise UsageError(f"unknown search mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


def grounding_for(options: Any, mode: Mode) -> Any:
    """Grounding options for ``mode``: lexical mode has no vector evidence to blend."""
    return options.with_(lexical_weight=1.0) if mode == "lexical" else options


def _fallback(indexer: Indexer, why: str) -> None:
    if id(indexer) not in _warned:
        _warned.add(id(indexer))
        _log.warning("%s: vector search only", why)


def _lexical(indexer: Indexer, analyzed: Sequence[QueryTerms]
             ) -> list[dict[str, PageEvidence]] | None:
    """Per query the evidence of its lexical candidates; None when unavailable."""
    if not isinstance(indexer, LexicalIndexer):
        _fallback(indexer, f"the {indexer.manifest.indexer} backend has no full-text index")
        return None
    try:
        hits = indexer.lexical_search(list(analyzed), fusion.REGION_HITS)
        candidates = [_pages_of(h) for h in hits]
        terms = indexer.page_terms(list(dict.fromkeys(k for c in candidates for k in c)))
    except RetrieverError as exc:
        _fallback(indexer, f"lexical search unavailable ({exc.message})")
        return None
    return [page_evidence(q, {k: terms[k] for k in c if k in terms}, h)
            for q, c, h in zip(analyzed, candidates, hits)]


def _pages_of(hits: Sequence[RegionScore]) -> list[str]:
    return list(dict.fromkeys(h.key for h in hits))[:fusion.LEXICAL_CANDIDATES]


def _neutral(dim: int) -> MultiVector:
    """A query vector for lexical mode's grounding, where vector evidence has no weight."""
    vector = np.zeros((1, dim), np.float32)
    vector[0, 0] = 1.0
    return MultiVector(vector, np.asarray([WHOLE_PAGE], np.float32))


def rank(indexer: Indexer, encoder: Callable[[], Encoder], queries: Sequence[str], k: int,
         mode: Mode, options: dict[str, Any]) -> list[Ranking]:
    """Top ``k`` pages per query in ``mode``; ``options`` go to the vector search.

    ``encoder`` gives the collection's encoder when it is needed (not in lexical mode)."""
    analyzed = [analyze(q) for q in queries] if mode != "vector" else []
    evidence = _lexical(indexer, analyzed) if analyzed else None
    if mode == "lexical" and evidence is not None:
        neutral = _neutral(indexer.manifest.encoder.dim)
        return [Ranking(neutral, fusion.rank_lexical(e, k)) for e in evidence]
    query_vectors = encoder().encode_queries(list(queries))
    if evidence is None:  # vector mode, or no lexical index: the indexer's ranking as is
        found = indexer.search(query_vectors, k, **options)
        return [Ranking(qv, [fusion.Fused(s.key, s.score) for s in scored])
                for qv, scored in zip(query_vectors, found)]
    found = indexer.search(query_vectors, max(k, fusion.VECTOR_CANDIDATES), **options)
    pages = indexer.count()
    return [Ranking(qv, fusion.fuse(scored, e, k, pages))
            for qv, scored, e in zip(query_vectors, found, evidence)]

"""One ranking from two kinds of evidence: vector similarity and lexical matches.

The rule, per query, over the candidate pages (the ``VECTOR_CANDIDATES`` best by vectors
and the pages of the ``REGION_HITS`` best regions by BM25, ``LEXICAL_CANDIDATES`` at
most)::

    V(page)  = (v(page) - v_1) / (v_1 - v_{1+n})    0 for the best vector page, -1 for the
                                                    one n = 10 pages below it (n = 1/5 of
                                                    the pages in a collection of under 50):
                                                    the encoder's own scale drops out
    L(page)  = max over its regions r of (bm25_r / bm25_best + coverage_r) / 2   in [0, 1]
    lambda   = LOW + (HIGH - LOW) * clip((C - C_LOW) / (C_HIGH - C_LOW), 0, 1)
               C: the best coverage of any candidate region (evidence.py)
    score    = (V + lambda * L) / (1 + lambda)

``lambda`` adapts to the query through the evidence itself: when some region holds
(nearly) all of the query's rare words together (C >= 0.9, what a pasted phrase or a
keyword lookup gives), the lexical side decides and vectors break its ties; when no
region holds more than about half of them (C <= 0.6, what a question in the asker's own
words gives), vectors lead: a third of L is worth one V unit. Nothing looks at
the query's form (question marks, length), so a question quoting an error message
verbatim is treated as the lookup it is.

How it was chosen (page@1; tuned on hand-written questions of the ``dev`` split (15) and
on 150 phrase + 150 keyword queries generated with seed 1 plus 44 hand-written questions
over six other Debian manuals: libtasn1, shared-mime-info, GLPK graphs, GnuTLS, Valgrind,
fontconfig; 182 pages, 6 of them images through OCR; never on the test split or
``generated.jsonl``). Columns: dev questions / tuning phrases / keywords / questions;
rows from a replay of the same stored evidence, the last through ``retriever eval``:

===========================================  =====  =====  =====  =====
vectors alone (MiniLM lines)                 0.667  0.667  0.560  0.386
BM25 over pages                              0.600  0.873  0.967  0.295
BM25 over regions (best region per page)     0.733  0.913  0.960  0.318
min-max fusion, page BM25, lexical 0.3       0.800  0.787  0.820  0.409
min-max fusion, page BM25, lexical 0.7       0.667  0.880  0.953  0.318
reciprocal rank fusion (k = 60)              0.733  0.793  0.733  0.386
this rule, lambda fixed at 3                 0.867  0.927  0.973  0.455
this rule, lambda fixed at 20                0.800  0.960  0.993  0.364
this rule, adaptive lambda 3 .. 20           0.867  0.960  0.993  0.477
the same through ``retriever eval``          0.867  0.960  0.993  0.500
===========================================  =====  =====  =====  =====

BM25 over regions beats BM25 over pages, so the store's full-text index is over regions
(and the page's evidence is its best region's). Coverage adds what BM25 misses (a region
holding the query's words together: keywords 0.960 -> 0.993 with it). Exact phrase runs
and bigram overlap were measured as further terms of ``L`` and added nothing beyond
coverage (phrases +0.013, questions -0.02), so they are left out. The plateau is wide:
LOW 3..4, HIGH 15..30, C_LOW 0.5..0.6 change no figure by more than a query; LOW 2 loses
dev questions (0.800). ``REGION_HITS`` 60..200 give the same figures; 100 keeps the
full-text query cheap. On the samples (7 pages, 15 questions) the small-collection
yardstick (``SPREAD_SHARE``) keeps vectors' 15/15 (14/15 with the 11th page).
"""

from __future__ import annotations

__all__ = ["VECTOR_CANDIDATES", "LEXICAL_CANDIDATES", "REGION_HITS", "Fused",
           "lexical_weight", "fuse", "rank_lexical"]

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..protocols import ScoredPage
from .evidence import PageEvidence

VECTOR_CANDIDATES = 30
LEXICAL_CANDIDATES = 30
REGION_HITS = 100
# V's unit: the gap between the best vector page and the one SPREAD_RANK below; in a small
# collection the 11th page is an unrelated one, which would make every gap look small
SPREAD_RANK = 10
SPREAD_SHARE = 5  # ... so below 50 pages: a fifth of the pages below
LOW, HIGH = 3.0, 20.0  # lambda when no region / some region holds the query's words
C_LOW, C_HIGH = 0.6, 0.9  # the coverage between which lambda goes from LOW to HIGH


@dataclass(frozen=True)
class Fused:
    """A page in the fused ranking, with its per-region lexical evidence (None: none)."""

    key: str
    score: float
    lexical: np.ndarray | None = None


def lexical_weight(evidence: Mapping[str, PageEvidence]) -> float:
    """``lambda`` for one query from its candidates' evidence."""
    best = max((float(e.coverage.max()) for e in evidence.values() if e.coverage.size),
               default=0.0)
    share = min(1.0, max(0.0, (best - C_LOW) / (C_HIGH - C_LOW)))
    return LOW + (HIGH - LOW) * share


def fuse(vector: Sequence[ScoredPage], evidence: Mapping[str, PageEvidence],
         k: int, pages: int | None = None) -> list[Fused]:
    """The top ``k`` pages of one query by the rule above; ties by key. ``pages``: how
    many the collection holds (default: as many as ``vector``)."""
    if not vector and not evidence:
        return []
    scores = {s.key: s.score for s in vector}
    if vector:
        top = vector[0].score
        below = min(SPREAD_RANK, max(1, (pages or len(vector)) // SPREAD_SHARE))
        spread = top - vector[min(below, len(vector) - 1)].score
        floor = vector[-1].score  # a page below the vector candidates: at most this
    else:
        top, spread, floor = 0.0, 0.0, 0.0
    weight = lexical_weight(evidence)
    out = []
    for key in dict.fromkeys([*scores, *evidence]):
        v = (scores.get(key, floor) - top) / spread if spread > 0 else 0.0
        found = evidence.get(key)
        lexical = found.score if found is not None else 0.0
        out.append(Fused(key, (v + weight * lexical) / (1 + weight),
                         found.regions if found is not None else None))
    out.sort(key=lambda f: (-f.score, f.key))
    return out[:k]


def rank_lexical(evidence: Mapping[str, PageEvidence], k: int) -> list[Fused]:
    """Lexical mode: pages by their lexical evidence alone (pages without any left out)."""
    out = [Fused(key, e.score, e.regions) for key, e in evidence.items() if e.score > 0]
    out.sort(key=lambda f: (-f.score, f.key))
    return out[:k]

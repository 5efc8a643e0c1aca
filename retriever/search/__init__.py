"""Search beyond the indexer's vectors: lexical analysis, evidence, fusion, the driver.

Modules: ``lexical`` (the one text analyzer every store and query shares), ``bm25``
(in-memory BM25 for backends without a full-text index), ``evidence`` (per-region lexical
evidence), ``fusion`` (the hybrid ranking rule and how it was chosen), ``hybrid`` (what
``Retriever.search`` calls). Pure Python and numpy: importing it loads no store or model.
"""

from __future__ import annotations

__all__ = ["MODES", "Mode", "QueryTerms", "analyze", "check_mode", "region_evidence",
           "region_terms"]

from .evidence import region_evidence
from .hybrid import MODES, Mode, check_mode
from .lexical import QueryTerms, analyze, region_terms

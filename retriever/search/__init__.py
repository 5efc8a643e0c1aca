"""Search: the MaxSim kernels and codes the indexers score with, and what goes beyond
the vectors (lexical analysis, evidence, fusion, the hybrid driver).

Vector search: ``ragged`` (the block plan every kernel walks and the block sizes),
``scoring`` (numpy MaxSim, top-k), ``scoring_torch`` (torch MaxSim, thread budgets),
``quantization`` / ``quantization_torch`` (binary and int8 codes and their kernels),
``prefilter`` (page centroids), ``centroid_ivf`` (the FAISS IVF coarse stage),
``imputed`` (page scores from token hits), ``growable`` (in-place appends after a commit),
``twostage`` (the code index and the two-stage driver). Those are imported by their
module path, so importing this package loads neither torch nor FAISS.

Beyond the vectors: ``lexical`` (the one text analyzer every store and query shares), ``bm25``
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

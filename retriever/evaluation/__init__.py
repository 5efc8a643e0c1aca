"""Label-free retrieval-quality evaluation: ours against BM25 and chunked embeddings.

``evaluate(EvalConfig(paths=[...]))`` indexes the files through the SDK, generates phrase
and keyword queries from the PDFs' text layer (and/or reads hand-written ones from JSONL),
runs our search and two baselines on the same pages, and returns one row of page and
region metrics per system and query kind. ``retriever eval`` and
``benchmarks/quality.py`` are thin layers over it. Nothing here imports torch until an
encoder is created.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_SEARCH_OPTIONS",
    "SYSTEMS",
    "EvalConfig",
    "EvalResult",
    "Generated",
    "Outcome",
    "Query",
    "evaluate",
    "format_table",
    "generate_queries",
    "load_queries",
    "summarize",
    "write_queries",
]

from .generate import Generated, generate_queries
from .queries import Query, load_queries, write_queries
from .report import Outcome, format_table, summarize
from .runner import DEFAULT_SEARCH_OPTIONS, SYSTEMS, EvalConfig, EvalResult, evaluate

"""The FAISS index backend: a crash-safe collection directory searched through FAISS.

Importing this package is cheap (no faiss): the registry imports every built-in plugin to
learn its names, and only the factory loads faiss.
"""

from __future__ import annotations

__all__ = ["create_faiss_indexer", "register_indexers", "OPTIONS", "STORAGE_DTYPES"]

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import MissingDependencyError
from retriever.hookspecs import hookimpl
from retriever.options import Option, resolve_options
from retriever.search.quantization import QUANTIZATIONS
from retriever.specs import IndexerSpec

if TYPE_CHECKING:
    from retriever.manifest import Manifest

    from .indexer import FaissIndexer

#: how a collection may store its vectors (here, not in ``indexer``, so that declaring the
#: options imports neither numpy nor faiss)
STORAGE_DTYPES = ("float16", "float32")

#: every option of the faiss indexer; defaults are FaissIndexer's own. Build-time options
#: shape the stored collection and are recorded in its manifest; search-time ones may be
#: given when the collection is opened or per search.
OPTIONS: tuple[Option, ...] = (
    Option("index_type", str, None, "stage-1 index of a new collection (unset: auto by size; "
           "flat: exact MaxSim for multi-vector collections)",
           choices=("auto", "flat", "hnsw", "ivf", "ivfpq")),
    Option("dtype", str, "float16", "vector storage of a new collection",
           choices=STORAGE_DTYPES),
    Option("quantization", str, None, "codes of a new collection for a two-stage search",
           choices=QUANTIZATIONS),
    Option("candidates", int, 256, "pages scored exactly after the index's shortlist",
           minimum=1, stage="search"),
    Option("rerank", int, None, "pages scored exactly in stage 2 (overrides candidates; "
           "default for codes: per format)", minimum=1, stage="search"),
    Option("token_k", int, None, "vectors fetched per query vector in stage 1 (default 128)",
           minimum=1, stage="search"),
    Option("nprobe", int, None, "IVF lists searched", minimum=1, stage="search"),
    Option("ef_search", int, None, "HNSW search effort", minimum=1, stage="search"),
    Option("threads", int, None, "threads of the MaxSim kernel", minimum=1, stage="search"),
    Option("device", str, None, "torch device holding the pages for an exact search there "
           "(cuda, cuda:N; unset: the host's kernels)", stage="search"),
)


def create_faiss_indexer(
    path: Path | str, manifest: Manifest | None = None, **options: Any
) -> FaissIndexer:
    """``IndexerSpec`` factory: open the collection at ``path``, or create it if a manifest
    is given. Options: see ``OPTIONS`` and ``FaissIndexer``; checked before anything
    touches the disk (also when the factory is called directly, not through the spec)."""
    options = resolve_options("indexer 'faiss'", OPTIONS, options)
    try:
        import faiss  # noqa: F401 - only to give a clear error when it is missing
    except ImportError as exc:
        raise MissingDependencyError(
            "the faiss indexer needs faiss (faiss-cpu is missing)",
            hint="pip install 'vision-retriever[faiss]'",
        ) from exc
    from .indexer import FaissIndexer

    return FaissIndexer(Path(path), manifest, **options)


@hookimpl
def register_indexers(register: Any) -> None:
    register(
        IndexerSpec(
            name="faiss",
            factory=create_faiss_indexer,
            description="FAISS collection: flat / HNSW / IVF-PQ, exact MaxSim rerank; "
            "crash-safe generations",
            options=OPTIONS,
        )
    )

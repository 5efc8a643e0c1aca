"""The FAISS index backend: a crash-safe collection directory searched through FAISS.

Importing this package is cheap (no faiss): the registry imports every built-in plugin to
learn its names, and only the factory loads faiss.
"""

from __future__ import annotations

__all__ = ["create_faiss_indexer", "register_indexers", "OPTIONS"]

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import MissingDependencyError, UsageError
from retriever.hookspecs import hookimpl
from retriever.specs import IndexerSpec

if TYPE_CHECKING:
    from retriever.manifest import Manifest

    from .indexer import FaissIndexer

#: option -> what it must be (checked before anything touches the disk)
OPTIONS = {
    "index_type": "None, 'auto', 'flat', 'hnsw', 'ivf' or 'ivfpq'",
    "candidates": "a positive integer",
    "token_k": "a positive integer",
    "nprobe": "a positive integer",
    "ef_search": "a positive integer",
    "dtype": "'float16' or 'float32'",
    "threads": "a positive integer",
    "quantization": "'none', 'int8' or 'binary'",
    "rerank": "a positive integer",
}
_INDEX_TYPES = (None, "auto", "flat", "hnsw", "ivf", "ivfpq")


def _check_options(options: dict[str, Any]) -> None:
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise UsageError(f"unknown faiss indexer options {sorted(unknown)}",
                         hint=f"known: {sorted(OPTIONS)}")
    for name, value in options.items():
        if name == "index_type":
            ok = value in _INDEX_TYPES
        elif name in ("dtype", "quantization"):
            ok = value is None or isinstance(value, str)  # the indexer checks the names
        else:
            ok = (value is None and name != "candidates") or (
                isinstance(value, int) and not isinstance(value, bool) and value > 0)
        if not ok:
            raise UsageError(f"faiss indexer option {name}={value!r} is invalid",
                             hint=f"{name} must be {OPTIONS[name]}")


def create_faiss_indexer(
    path: Path | str, manifest: Manifest | None = None, **options: Any
) -> FaissIndexer:
    """``IndexerSpec`` factory: open the collection at ``path``, or create it if a manifest
    is given. Options: see ``OPTIONS`` and ``FaissIndexer``."""
    _check_options(options)
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
        )
    )

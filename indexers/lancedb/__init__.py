"""The default index backend: an embedded LanceDB database per collection.

Importing this package is cheap (no lancedb, no pyarrow): the registry imports every
built-in plugin to learn its names, and only the factory loads the heavy modules.
"""

from __future__ import annotations

__all__ = ["create_lancedb_indexer", "register_indexers"]

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import MissingDependencyError, UsageError
from retriever.hookspecs import hookimpl
from retriever.specs import IndexerSpec

if TYPE_CHECKING:
    from retriever.manifest import Manifest

    from .indexer import LanceDBIndexer

_OPTIONS = frozenset({"dtype", "cache_dtype", "threads", "quantization", "rerank"})


def create_lancedb_indexer(
    path: Path | str, manifest: Manifest | None = None, **options: Any
) -> LanceDBIndexer:
    """``IndexerSpec`` factory: open the collection at ``path``, or create it if a
    manifest is given. Options: ``dtype``, ``cache_dtype``, ``threads``, ``quantization``,
    ``rerank`` (see the class)."""
    unknown = set(options) - _OPTIONS
    if unknown:
        raise UsageError(
            f"unknown lancedb indexer options {sorted(unknown)}", hint=f"known: {sorted(_OPTIONS)}"
        )
    try:
        import lancedb  # noqa: F401 - only to give a clear error when it is missing
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"the lancedb indexer needs lancedb and pyarrow ({exc.name} is missing)",
            hint="pip install 'vision-retriever[lancedb]'",
        ) from exc
    from .indexer import LanceDBIndexer

    return LanceDBIndexer(Path(path), manifest, **options)


@hookimpl
def register_indexers(register: Any) -> None:
    register(
        IndexerSpec(
            name="lancedb",
            factory=create_lancedb_indexer,
            description="embedded LanceDB collection; exact MaxSim over a cached matrix, or "
            "two-stage search on int8/binary codes (default)",
        )
    )

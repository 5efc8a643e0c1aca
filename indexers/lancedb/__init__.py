"""The default index backend: an embedded LanceDB database per collection.

Importing this package is cheap (no lancedb, no pyarrow): the registry imports every
built-in plugin to learn its names, and only the factory loads the heavy modules.
"""

from __future__ import annotations

__all__ = ["OPTIONS", "create_lancedb_indexer", "register_indexers"]

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retriever.errors import MissingDependencyError
from retriever.hookspecs import hookimpl
from retriever.options import Option, resolve_options
from retriever.search.quantization import QUANTIZATIONS
from retriever.specs import IndexerSpec

if TYPE_CHECKING:
    from retriever.manifest import Manifest
    from retriever.storage import ObjectStore

    from .indexer import LanceDBIndexer

#: every option of the lancedb indexer; defaults are LanceDBIndexer's own. Build-time
#: options shape the stored table and are recorded in its manifest.
OPTIONS: tuple[Option, ...] = (
    Option("dtype", str, "float16", "vector storage of a new collection",
           choices=("float16", "float32")),
    Option("quantization", str, None, "codes of a new collection for a two-stage search",
           choices=QUANTIZATIONS),
    Option("cache_dtype", str, "float32", "in-memory search cache (float16 halves its memory)",
           choices=("float32", "float16"), stage="open"),
    Option("rerank", int, None, "quantized collections: pages scored exactly after the "
           "codes' shortlist (default: per format)", minimum=1, stage="search"),
    Option("threads", int, None, "threads of the MaxSim kernel", minimum=1, stage="search"),
    Option("device", str, None, "torch device holding the pages for an exact search there "
           "(cuda, cuda:N; unset: the host's kernels; collections without codes)",
           stage="search"),
)


def create_lancedb_indexer(
    path: Path | str, manifest: Manifest | None = None,
    storage: ObjectStore | None = None, **options: Any
) -> LanceDBIndexer:
    """``IndexerSpec`` factory: open the collection at ``path``, or create it if a
    manifest is given. ``storage``: ``path`` is a URI in that object store. Options:
    ``OPTIONS`` (see the class), checked before anything touches the disk."""
    options = resolve_options("indexer 'lancedb'", OPTIONS, options)
    try:
        import lancedb  # noqa: F401 - only to give a clear error when it is missing
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"the lancedb indexer needs lancedb and pyarrow ({exc.name} is missing)",
            hint="pip install 'vision-retriever[lancedb]'",
        ) from exc
    from .indexer import LanceDBIndexer

    if storage is not None:  # a URI: Path() would fold its "//"
        return LanceDBIndexer(str(path), manifest, storage=storage, **options)
    return LanceDBIndexer(Path(path), manifest, **options)


@hookimpl
def register_indexers(register: Any) -> None:
    register(
        IndexerSpec(
            name="lancedb",
            factory=create_lancedb_indexer,
            description="embedded LanceDB collection; exact MaxSim over a cached matrix, or "
            "two-stage search on int8/binary codes (default)",
            options=OPTIONS,
            object_storage=True,  # Lance reads and writes s3:// (gs://, az://) itself
        )
    )

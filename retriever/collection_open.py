"""Where a data directory keeps its collections, and opening one's indexer.

A collection is a directory (or an object-store prefix) holding one sub-directory named
after its backend. Opening checks what is asked (quantization, compressor, build-time
indexer options) against the collection's manifest; creating writes the manifest and the
empty collection whole under another name, then renames it into place.
"""

from __future__ import annotations

__all__ = ["find_backend", "list_collections", "delete_collection", "open_indexer",
           "collection_info"]

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import config
from .compression import check_compressor, open_compressor
from .errors import CollectionNotFoundError, RetrieverError, UsageError
from .integrity import create_atomically, open_checked
from .locking import writer_lock
from .manifest import Manifest
from .plugin_host import get_registry
from .protocols import Encoder, Indexer
from .storage import ObjectStore, object_store


def find_backend(path: Path) -> str | None:
    """The backend whose sub-directory ``path`` holds (None: no collection there)."""
    if not path.is_dir():
        return None
    for name in get_registry().names("indexer"):
        if (path / name).is_dir():
            return name
    return None


def list_collections(data_dir: str | Path | None = None,
                     storage_options: dict[str, Any] | None = None) -> list[str]:
    store = object_store(data_dir, storage_options)
    if store is not None:
        return store.collections()
    base = config.data_dir(data_dir) / "collections"
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def delete_collection(name: str, data_dir: str | Path | None = None,
                      storage_options: dict[str, Any] | None = None) -> None:
    store = object_store(data_dir, storage_options)
    if store is not None:
        store.delete_collection(name)
        return
    path = config.collection_path(name, config.data_dir(data_dir))
    if not path.is_dir():
        raise CollectionNotFoundError(f"no collection named {name!r} in {path.parent}")
    with writer_lock(data_dir, name, "delete_collection"):  # never under a live writer
        shutil.rmtree(path)


def open_indexer(collection: str, path: Path | str, store: ObjectStore | None, *,
                 where_missing: Path | str, backend: str | None, asked_backend: str | None,
                 indexer_options: Mapping[str, Any], quantization: str | None,
                 compress: str | None, create_with: Encoder | None) -> Indexer:
    """The indexer of ``collection`` at ``path`` (``backend``: the one found there, None
    if there is none yet), created with ``create_with``'s identity when it is new.

    ``where_missing`` names the place in the error for a collection that does not exist.
    """
    if backend is None and create_with is None:
        raise CollectionNotFoundError(
            f"no collection named {collection!r} in {where_missing}",
            hint=f"index some files first: retriever index PATH --collection {collection}")
    if backend is not None and asked_backend and backend != asked_backend:
        raise RetrieverError(f"collection {collection!r} uses the {backend} backend, "
                             f"not {asked_backend}")
    backend = backend or asked_backend or config.DEFAULT_INDEXER
    spec = get_registry().get("indexer", backend)
    where: dict[str, Any]  # where the indexer keeps the collection
    if store is not None:
        store.check_backend(backend)
        where = {"path": f"{path}/{backend}", "storage": store}
    else:
        where = {"path": Path(path) / backend}
    # build-time options shape what is stored: recorded in a new collection's
    # manifest, and for an existing one only checked against it (never re-applied)
    build, runtime = spec.split_options(indexer_options)
    manifest = None
    if create_with is not None:
        manifest = Manifest(encoder=create_with.identity, indexer=backend,
                            quantization=quantization or "none", indexer_options=build,
                            compressor=open_compressor(compress)[0] if compress else None)
    if manifest is not None and store is None and not where["path"].exists():
        # a new collection: made whole under another name, then renamed into place.
        # (On object storage there is no rename: Lance's first commit makes the table
        # appear whole, and open_checked below creates it.)
        create_atomically(spec, where["path"], manifest, {**build, **runtime})
    # damaged files or an unknown format: one clear error naming the collection
    indexer = open_checked(spec, collection, **where, manifest=manifest,
                           **(runtime if manifest is None else {**build, **runtime}))
    try:
        indexer.manifest.check_quantization(quantization, collection)
        check_compressor(indexer.manifest.compressor, compress, collection)
        indexer.manifest.check_indexer_options(build, spec.option_defaults(), collection)
    except UsageError:
        indexer.close()
        raise
    return indexer


def collection_info(collection: str, path: Path | str, indexer: Indexer) -> dict[str, Any]:
    """What ``collections info`` shows of an open collection, as plain data."""
    manifest = indexer.manifest
    return {
        "collection": collection,
        "path": str(path),
        "backend": manifest.indexer,
        "encoder": {"name": manifest.encoder.name, "model_id": manifest.encoder.model_id,
                    "revision": manifest.encoder.revision, "dim": manifest.encoder.dim,
                    "kind": manifest.encoder.kind, "options": manifest.encoder.options},
        "quantization": manifest.quantization,
        "compressor": manifest.compressor,
        "indexer_options": dict(manifest.indexer_options),
        "schema_version": manifest.schema_version,
        "documents": len(indexer.documents()),
        "pages": indexer.count(),
        # vectors stored: what a compressor shrinks (None: the backend cannot say)
        "vectors": (indexer.vector_count() if hasattr(indexer, "vector_count") else None),
    }

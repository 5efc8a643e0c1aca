"""A collection split into shards, served as one collection (``retriever serve --ray``).

``ShardedView`` gives the routes the part of the ``Retriever`` surface they use: reads
(search, context, info, the page records behind images) go through a
``ShardedRetriever``, one Ray actor per shard holding that shard's search state, and
writes (uploads, deletes) through a ``ShardedCollection``, which routes each file to the
shard its content hash belongs to. An upload is seen by the next search, as unsharded.
"""

from __future__ import annotations

__all__ = ["ShardedView", "served_shards"]

from pathlib import Path
from typing import Any, Callable

from ..distributed.sharding import ShardedCollection, find_shards, sharded_collections
from ..indexing import DeleteReport, IndexReport

#: what ``collections info`` says of a collection that every shard says alike
_SHARED_INFO = ("backend", "encoder", "quantization", "compressor", "indexer_options",
                "schema_version")


def served_shards(data_dir: Path) -> dict[str, int]:
    """``collection -> shards`` for each collection with one complete set of shards."""
    return {name: counts[0] for name, counts in sharded_collections(data_dir).items()
            if len(counts) == 1}


class ShardedView:
    def __init__(self, collection: str, data_dir: Path, *, ocr: str | None,
                 setup: Callable[[], None] | None = None) -> None:
        from ..distributed.ray_search import ShardedRetriever

        self.collection = collection
        self.data_dir = data_dir
        self.shards = find_shards(collection, data_dir)
        self._reader = ShardedRetriever(collection, data_dir=data_dir, shards=self.shards,
                                        setup=setup)
        self._writer = ShardedCollection(collection, self.shards, data_dir=data_dir, ocr=ocr)

    @property
    def exists(self) -> bool:
        return served_shards(self.data_dir).get(self.collection) == self.shards

    @property
    def indexer(self) -> Any:
        return self._reader.indexer

    @property
    def encoder(self) -> Any:
        return self._reader.encoder

    def search(self, query: str, k: int = 5, **options: Any) -> Any:
        return self._reader.search(query, k, **options)

    def context(self, query: str, **options: Any) -> Any:
        return self._reader.context(query, **options)

    def documents(self) -> dict[str, list[str]]:
        return self._reader.documents()

    def info(self) -> dict[str, Any]:
        parts = self._reader.info()["shards"]
        out: dict[str, Any] = {"collection": self.collection}
        out.update({key: parts[0].get(key) for key in _SHARED_INFO})
        for total in ("documents", "pages", "vectors"):
            values = [p.get(total) for p in parts]
            out[total] = None if None in values else sum(values)
        out["shards"] = [{"name": p["collection"], "documents": p["documents"],
                          "pages": p["pages"]} for p in parts]
        return out

    def index(self, paths: list[Path], *, workers: int | None = None) -> IndexReport:
        return self._writer.index(paths, workers=workers)

    def delete(self, targets: list[str]) -> DeleteReport:
        return self._writer.delete(targets)

    def close(self) -> None:
        self._reader.close()

"""Beyond one machine: indexing on Ray Data (``ray_index``), and collections split into
shards, searched by one Ray actor each.

``sharding`` splits a collection (``shard_collection``) and indexes new files into the
right shard (``ShardedCollection``); it needs no Ray. ``ray_search`` holds
``ShardedRetriever``, which imports Ray when one is made. Importing this package loads
neither Ray nor torch.
"""

from __future__ import annotations

__all__ = ["RayIndexOptions", "ShardReport", "ShardedCollection", "ShardedRetriever", "find_shards",
           "shard_collection", "shard_name", "shard_of"]

from typing import TYPE_CHECKING, Any

from .ray_index import RayIndexOptions
from .sharding import (
    ShardedCollection,
    ShardReport,
    find_shards,
    shard_collection,
    shard_name,
    shard_of,
)

if TYPE_CHECKING:
    from .ray_search import ShardedRetriever


def __getattr__(name: str) -> Any:
    if name == "ShardedRetriever":  # lazily: its module is cheap, but say so plainly
        from .ray_search import ShardedRetriever

        return ShardedRetriever
    raise AttributeError(name)

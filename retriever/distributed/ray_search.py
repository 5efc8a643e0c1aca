"""Sharded search on Ray: one actor per shard, the query fanned out, the top k merged.

Each actor (``_ShardWorker``) holds an open ``Retriever`` over its shard collection, so
its search state (the vector cache, or the codes of a quantized collection) is loaded
once and stays in that process's memory; the query encoder is built there too, once per
actor, when it first encodes a query.

The driver side is the ordinary SDK search: ``ShardedRetriever`` runs
``Retriever.search_many`` over a ``_FanoutIndexer``, an ``Indexer`` whose every call goes
to the shards. So ranking, fusion and grounding are the same code as unsharded search:

* ``search`` (MaxSim): each shard's top k, merged by (score, key), the order the
  indexers use. A page's MaxSim depends on that page alone, so the merge is exact.
* ``count``: the sum; ``get`` / ``page_terms``: asked of the shard that holds the
  document (``shard_of``), for the pages that need them only: the final top k's
  records for grounding, not every shard's top k.
* ``lexical_search`` (BM25 over regions): each shard's top k regions, merged by score.
  BM25's IDF and average region length are each shard's own, so these scores, and the
  hybrid and lexical rankings built on them, are close to but not always those of the
  unsharded collection. Everything after them (the vector candidates, the page count,
  coverage with its IDF over the candidates, the fusion) is computed centrally as
  unsharded search does.

Ray is imported when a ``ShardedRetriever`` is made, never by ``import retriever``.
"""

from __future__ import annotations

__all__ = ["ShardedRetriever"]

import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import config
from ..errors import RetrieverError, UsageError
from ..grounding import Aggregate, GroundingOptions
from ..manifest import Manifest
from ..protocols import RegionScore, ScoredPage
from ..sdk import Retriever
from ..search.hybrid import Mode
from ..types import WHOLE_PAGE, Hit, MultiVector, PageRecord
from .cluster import import_ray, join_ray
from .sharding import find_shards, shard_name, shard_of


def _gather(refs: Any) -> Any:
    """``ray.get``, with a shard's RetrieverError raised as itself (its message and exit
    code, as unsharded search gives them) rather than wrapped in Ray's task error."""
    ray = import_ray()
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, RetrieverError):
            raise exc.cause from None
        raise


def _doc_of(key: str) -> str:
    return key.rsplit(":", 1)[0]  # page keys are doc_id:page


class _ShardWorker:
    """What runs in each actor: one shard's ``Retriever``, its indexer and encoder."""

    def __init__(self, collection: str, data_dir: str, setup: Callable[[], None] | None,
                 retriever_options: dict[str, Any]) -> None:
        if setup is not None:  # e.g. register a plugin this process has not loaded
            setup()
        self.retriever = Retriever(collection, data_dir=data_dir, **retriever_options)
        self.indexer = self.retriever.indexer
        self._warm()

    def _warm(self) -> None:
        """Load the search state now (the vector cache or codes), not on the first query."""
        if self.indexer.count() == 0:
            return
        axis = np.zeros((1, self.indexer.manifest.encoder.dim), np.float32)  # (1, d)
        axis[0, 0] = 1.0  # any unit vector: the search is for its side effect only
        self.indexer.search([MultiVector(axis, np.asarray([WHOLE_PAGE], np.float32))], 1)

    def manifest(self) -> Manifest:
        return self.indexer.manifest

    def search_parameters(self) -> list[str]:
        """The keyword options the shard's ``search`` takes (rerank, nprobe, ...)."""
        params = list(inspect.signature(self.indexer.search).parameters.values())[2:]
        return [p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]

    def encoder_traits(self) -> dict[str, Any]:
        encoder = self.retriever.encoder
        return {"name": encoder.name, "dim": encoder.dim, "kind": encoder.kind,
                "region_aggregate": getattr(encoder, "region_aggregate", None)}

    def encode_queries(self, texts: list[str]) -> list[MultiVector]:
        return self.retriever.encoder.encode_queries(texts)

    def search(self, queries: list[MultiVector], k: int,
               options: dict[str, Any]) -> list[list[ScoredPage]]:
        return self.indexer.search(queries, k, **options)

    def lexical_search(self, queries: list[Any], k: int) -> list[list[RegionScore]] | None:
        lexical = getattr(self.indexer, "lexical_search", None)
        return None if lexical is None else lexical(queries, k)

    def page_terms(self, keys: list[str]) -> dict[str, list[str]]:
        return self.indexer.page_terms(keys)  # type: ignore[attr-defined]

    def get(self, keys: list[str]) -> list[PageRecord]:
        records = self.indexer.get(keys)
        for record in records:  # parsed here: what crosses to the driver is plain data
            record.regions = list(record.regions)
        return records

    def count(self) -> int:
        return self.indexer.count()

    def documents(self) -> dict[str, list[str]]:
        return self.retriever.documents()

    def info(self) -> dict[str, Any]:
        return self.retriever.info()

    def close(self) -> None:
        self.retriever.close()


class _RemoteEncoder:
    """The collection's encoder as the SDK sees it; queries are encoded in an actor,
    taking turns, so the driver loads no model and each actor loads it once."""

    def __init__(self, actors: Sequence[Any], traits: Mapping[str, Any]) -> None:
        self._turns = itertools.cycle(actors)
        self.name, self.dim, self.kind = traits["name"], traits["dim"], traits["kind"]
        if traits.get("region_aggregate"):
            self.region_aggregate = traits["region_aggregate"]

    def encode_queries(self, texts: Sequence[str]) -> list[MultiVector]:
        return _gather(next(self._turns).encode_queries.remote(list(texts)))

    def encode_pages(self, pages: Sequence[Any]) -> list[MultiVector]:
        raise UsageError("a ShardedRetriever searches; index through ShardedCollection")


class _FanoutIndexer:
    """An ``Indexer`` (and ``LexicalIndexer``) whose calls go to the shard actors."""

    def __init__(self, actors: Sequence[Any], manifest: Manifest,
                 search_parameters: Sequence[str]) -> None:
        self._actors = list(actors)
        self.manifest = manifest
        # Retriever.search_many checks the options against the signature of search; the
        # shards' own keyword options (rerank, threads, ...) are what this one takes
        params = [inspect.Parameter("queries", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  inspect.Parameter("k", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None)
                   for name in search_parameters]
        def search(queries: Sequence[MultiVector], k: int, **options: Any
                   ) -> list[list[ScoredPage]]:
            return self._search(queries, k, **options)

        search.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        self.search = search

    def _all(self, method: str, *args: Any) -> list[Any]:
        return _gather([getattr(actor, method).remote(*args) for actor in self._actors])

    def _by_shard(self, keys: Sequence[str]) -> dict[int, list[str]]:
        routed: dict[int, list[str]] = {}
        for key in dict.fromkeys(keys):
            routed.setdefault(shard_of(_doc_of(key), len(self._actors)), []).append(key)
        return routed

    def _search(self, queries: Sequence[MultiVector], k: int, **options: Any
                ) -> list[list[ScoredPage]]:
        given = {name: value for name, value in options.items() if value is not None}
        per_shard = self._all("search", list(queries), k, given)
        merged = []
        for q in range(len(queries)):
            pages = [page for shard in per_shard for page in shard[q]]
            pages.sort(key=lambda s: (-s.score, s.key))  # the indexers' order: ties by key
            merged.append(pages[:k])
        return merged

    def lexical_search(self, queries: Sequence[Any], k: int) -> list[list[RegionScore]]:
        per_shard = self._all("lexical_search", list(queries), k)
        if any(found is None for found in per_shard):
            raise RetrieverError(f"the {self.manifest.indexer} backend has no full-text index")
        merged = []
        for q in range(len(queries)):
            hits = [hit for shard in per_shard for hit in shard[q]]
            hits.sort(key=lambda h: (-h.score, h.key, h.region))
            merged.append(hits[:k])
        return merged

    def page_terms(self, keys: Sequence[str]) -> dict[str, list[str]]:
        routed = self._by_shard(keys)
        out: dict[str, list[str]] = {}
        for found in _gather([self._actors[s].page_terms.remote(ks) for s, ks in routed.items()]):
            out.update(found)
        return out

    def get(self, keys: Sequence[str]) -> list[PageRecord]:
        routed = self._by_shard(keys)
        found: dict[str, PageRecord] = {}
        for records in _gather([self._actors[s].get.remote(ks) for s, ks in routed.items()]):
            found.update((record.key, record) for record in records)
        return [found[key] for key in keys]

    def count(self) -> int:
        return sum(self._all("count"))

    def documents(self) -> dict[str, str]:
        return {doc_id: paths[0] for doc_id, paths in self.paths().items()}

    def paths(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for part in self._all("documents"):
            out.update(part)
        return out

    def close(self) -> None:
        """The actors are the ShardedRetriever's to end."""


class ShardedRetriever:
    """Search a collection split by ``shard_collection`` with one Ray actor per shard.

    ``shards``: how many (default: found from the shard collections present). Ray must be
    running (``ray.init``) or it is started locally with its defaults. ``setup``: a
    callable each actor runs first (e.g. to register a plugin). ``actor_options`` go to
    ``ray.remote`` for each actor (default ``{"num_cpus": 1}``; e.g. ``num_gpus`` for a
    model on GPU). ``retriever_options`` go to each shard's ``Retriever`` (encoder
    options, indexer_options such as threads).

    ``search`` / ``search_many`` take the SDK's arguments and return its ``Hit``s; see the
    module docstring for what is exact (vector mode) and what is approximate (BM25).
    """

    def __init__(self, collection: str, *, data_dir: str | Path | None = None,
                 shards: int | None = None, setup: Callable[[], None] | None = None,
                 actor_options: Mapping[str, Any] | None = None,
                 **retriever_options: Any) -> None:
        ray = import_ray()
        self.collection = config.validate_collection_name(collection)
        root = config.data_dir(data_dir)
        self.shards = shards if shards is not None else find_shards(collection, root)
        self.names = [shard_name(collection, i, self.shards) for i in range(self.shards)]
        for name in self.names:  # a clear error here rather than an actor's traceback
            if not Retriever(name, data_dir=root).exists:
                raise RetrieverError(f"shard collection {name!r} does not exist in {root}",
                                     hint=f"retriever collections shard {collection} "
                                          f"--shards {self.shards}")
        join_ray(ray, None)  # the cluster this process is on, else a new local one
        remote = ray.remote(**{"num_cpus": 1, **(actor_options or {})})(_ShardWorker)
        self._actors = [remote.remote(name, str(root), setup, dict(retriever_options))
                        for name in self.names]
        manifests = _gather([actor.manifest.remote() for actor in self._actors])
        if any(m != manifests[0] for m in manifests[1:]):
            self.close()
            raise UsageError(f"the shards of {collection!r} were not built alike",
                             hint="split the collection again into new shards")
        self._indexer = _FanoutIndexer(self._actors, manifests[0],
                                       _gather(self._actors[0].search_parameters.remote()))
        # the SDK's own search over the fan-out indexer: the same ranking, fusion and
        # grounding code as an unsharded collection (the name is only for messages)
        self._front = Retriever(self.names[0], data_dir=root)
        self._front._indexer = self._indexer  # type: ignore[assignment]

    def _encoder(self) -> _RemoteEncoder:
        if self._front._encoder is None:
            traits = _gather(self._actors[0].encoder_traits.remote())
            self._front._encoder = _RemoteEncoder(self._actors, traits)  # type: ignore[assignment]
        return self._front._encoder  # type: ignore[return-value]

    @property
    def indexer(self) -> Any:
        """The fan-out indexer: every call goes to the shards (``get`` to the one that
        holds the page)."""
        return self._indexer

    @property
    def encoder(self) -> Any:
        """The query encoder, run by the actors in turns (no model in this process)."""
        return self._encoder()

    def search(self, query: str, k: int = 5, **options: Any) -> list[Hit]:
        return self.search_many([query], k, **options)[0]

    def search_many(self, queries: Sequence[str], k: int = 5, *, regions: bool = True,
                    aggregate: Aggregate | None = None, max_regions: int | None = None,
                    rerank: int | None = None,
                    indexer_options: dict[str, Any] | None = None,
                    grounding: GroundingOptions | dict[str, Any] | None = None,
                    mode: Mode = "hybrid") -> list[list[Hit]]:
        """``Retriever.search_many`` over every shard: the same arguments and ``Hit``s."""
        if mode != "lexical":
            self._encoder()
        return self._front.search_many(queries, k, regions=regions, aggregate=aggregate,
                                       max_regions=max_regions, rerank=rerank,
                                       indexer_options=indexer_options, grounding=grounding,
                                       mode=mode)

    def context(self, query: str, **options: Any) -> Any:
        """``Retriever.context`` (cited regions for an LLM prompt) over every shard."""
        if options.get("mode") != "lexical":
            self._encoder()
        return self._front.context(query, **options)

    def documents(self) -> dict[str, list[str]]:
        """``doc_id -> paths`` over every shard."""
        return self._indexer.paths()

    def info(self) -> dict[str, Any]:
        parts = self._indexer._all("info")
        return {"collection": self.collection, "shards": parts,
                "documents": sum(p["documents"] for p in parts),
                "pages": sum(p["pages"] for p in parts)}

    def close(self) -> None:
        """End the actors (their memory is freed with them)."""
        ray = import_ray()
        for actor in getattr(self, "_actors", []):
            ray.kill(actor)
        self._actors = []

    def __enter__(self) -> ShardedRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Haystack 2: ``VisionRetriever``, a component that searches a collection.

Needs ``haystack-ai`` (``pip install 'vision-retriever[haystack]'``)::

    from haystack import Pipeline
    from retriever.integrations.haystack import VisionRetriever

    pipeline = Pipeline()
    pipeline.add_component("retriever", VisionRetriever(collection="papers", k=4))
    documents = pipeline.run({"retriever": {"query": "what limits cycle life?"}})["retriever"]["documents"]

Each ``Document`` is one returned region: ``content`` is its text, ``score`` its score,
``id`` ``doc_id:page:region``, and ``meta`` (plain JSON) the fields of
``retriever.integrations._records`` plus Haystack's usual ``file_path`` and
``page_number`` (1-based). The component serialises with its pipeline (``to_dict``,
``Pipeline.dumps``) by collection name and data directory, never by an open collection.
"""

from __future__ import annotations

__all__ = ["VisionRetriever"]

import asyncio
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from ..sdk import Retriever
from ._records import DEFAULT_K, RegionRecord, check_k, open_retriever, search_records


def _document(record: RegionRecord) -> Document:
    meta = {**record.metadata, "file_path": record.metadata["source"],
            "page_number": record.metadata["page"]}
    return Document(id=record.id, content=record.text, meta=meta, score=record.score)


@component
class VisionRetriever:
    """The ``k`` best regions of a collection for a query, as Haystack ``Document``s.

    Give ``collection`` (and ``data_dir``; default: ``$RETRIEVER_HOME`` or the per-user
    data directory), or an open ``retriever`` (serialised by its collection and data
    directory). ``k`` is the number of Documents (regions, not pages); ``run(top_k=N)``
    overrides it for one call. ``search_kwargs`` go to ``Retriever.search`` (JSON values:
    they are saved with the pipeline); with ``crop_dir`` regions are cropped there
    (``meta["crop_path"]``). ``warm_up()`` opens the collection and loads its model.
    """

    def __init__(
        self,
        collection: str | None = None,
        data_dir: str | None = None,
        k: int = DEFAULT_K,
        search_kwargs: dict[str, Any] | None = None,
        crop_dir: str | None = None,
        retriever: Retriever | None = None,
    ) -> None:
        self._sdk = open_retriever(retriever, collection, data_dir)
        self.k = check_k(k)
        self.search_kwargs = dict(search_kwargs or {})
        self.crop_dir = crop_dir

    def warm_up(self) -> None:
        """Open the collection (a missing one fails here, not at the first query) and load
        its encoder, unless only the full-text index is searched."""
        self._sdk.indexer  # noqa: B018 - opening is the point
        if self.search_kwargs.get("mode") != "lexical":
            self._sdk.encoder  # noqa: B018

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None) -> dict[str, list[Document]]:
        k = check_k(self.k if top_k is None else top_k)
        records = search_records(self._sdk, query, k, search_kwargs=self.search_kwargs,
                                 crop_dir=self.crop_dir)
        return {"documents": [_document(record) for record in records]}

    # the search blocks (model, disk): an AsyncPipeline runs it off the event loop
    @component.output_types(documents=list[Document])
    async def run_async(self, query: str,
                        top_k: int | None = None) -> dict[str, list[Document]]:
        return await asyncio.to_thread(self.run, query, top_k)

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, collection=self._sdk.collection,
                               # a URI without its storage options: never secrets
                               data_dir=(self._sdk.store.uri if self._sdk.store is not None
                                         else str(Path(self._sdk.root))), k=self.k,
                               search_kwargs=self.search_kwargs,
                               crop_dir=None if self.crop_dir is None else str(self.crop_dir))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VisionRetriever:
        return default_from_dict(cls, data)

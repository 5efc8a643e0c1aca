"""LlamaIndex: ``VisionRetriever``, a ``BaseRetriever`` over a collection.

Needs ``llama-index-core`` (``pip install 'vision-retriever[llamaindex]'``)::

    from retriever.integrations.llamaindex import VisionRetriever

    for found in VisionRetriever(collection="papers", k=4).retrieve("what limits cycle life?"):
        print(type(found.node).__name__, found.score, found.node.metadata)

It returns a ``TextNode`` per region (text, the metadata of
``retriever.integrations._records``) and, before the first region of each page, an
``ImageNode`` for the page: its PNG, rendered once into ``image_dir`` by
``retriever.crops``, is ``image_path`` and ``metadata["file_path"]``, so a multimodal LLM
can read the page the regions came from. Region nodes name the page node as their parent.
"""

from __future__ import annotations

__all__ = ["VisionRetriever"]

import asyncio
import logging
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import (
    ImageNode,
    NodeRelationship,
    NodeWithScore,
    QueryBundle,
    RelatedNodeInfo,
    TextNode,
)

from ..config import cache_dir
from ..crops import PageUnavailable, save_page_image
from ..sdk import Retriever
from ._records import DEFAULT_K, RegionRecord, check_k, open_retriever, search_records

log = logging.getLogger(__name__)

#: what an LLM sees of a node's metadata beside its text: where it is, not boxes and scores
_FOR_THE_LLM = ("source", "page")


def _hidden(metadata: dict[str, Any]) -> list[str]:
    return [name for name in metadata if name not in _FOR_THE_LLM]


class VisionRetriever(BaseRetriever):
    """The ``k`` best regions of a collection for a query, as LlamaIndex nodes.

    Give ``collection`` (and ``data_dir``; default: ``$RETRIEVER_HOME`` or the per-user
    data directory), or an open ``retriever``. ``k`` counts region nodes; page image nodes
    come on top of them (one per page, ``page_images=False`` for none). ``search_kwargs``
    go to ``Retriever.search``; with ``crop_dir`` regions are cropped there
    (``metadata["crop_path"]``). Page images go to ``image_dir`` (default: the cache
    directory's ``pages/``) at ``dpi``.
    """

    def __init__(
        self,
        *,
        collection: str | None = None,
        data_dir: str | Path | None = None,
        k: int = DEFAULT_K,
        retriever: Retriever | None = None,
        search_kwargs: dict[str, Any] | None = None,
        crop_dir: str | Path | None = None,
        page_images: bool = True,
        image_dir: str | Path | None = None,
        dpi: int = 150,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        self._sdk = open_retriever(retriever, collection, data_dir)
        self.k = check_k(k)
        self.search_kwargs = dict(search_kwargs or {})
        self.crop_dir = crop_dir
        self.page_images = page_images
        self.image_dir = Path(image_dir) if image_dir is not None else cache_dir() / "pages"
        self.dpi = dpi
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        records = search_records(self._sdk, query_bundle.query_str, self.k,
                                 search_kwargs=self.search_kwargs, crop_dir=self.crop_dir)
        found: list[NodeWithScore] = []
        pages: dict[tuple[str, int], ImageNode | None] = {}
        for record in records:
            if record.page_key not in pages:
                page = self._page_node(record) if self.page_images else None
                pages[record.page_key] = page
                if page is not None:
                    found.append(NodeWithScore(node=page, score=record.metadata["page_score"]))
            found.append(NodeWithScore(node=self._region_node(record, pages[record.page_key]),
                                       score=record.score))
        return found

    # the search blocks (model, disk): off the event loop, on the default executor
    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)

    def _region_node(self, record: RegionRecord, page: ImageNode | None) -> TextNode:
        metadata = dict(record.metadata)
        relationships = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=metadata["doc_id"])}
        if page is not None:
            relationships[NodeRelationship.PARENT] = RelatedNodeInfo(node_id=page.node_id)
        return TextNode(id_=record.id, text=record.text, metadata=metadata,
                        relationships=relationships,
                        excluded_llm_metadata_keys=_hidden(metadata),
                        excluded_embed_metadata_keys=list(metadata))

    def _page_node(self, record: RegionRecord) -> ImageNode | None:
        metadata = record.page_metadata()
        try:
            path = save_page_image(metadata["paths"], metadata["doc_id"], metadata["page"],
                                   self.image_dir, dpi=self.dpi)
        except PageUnavailable as exc:  # the regions still answer; only the picture is lost
            log.warning("%s; no page image", exc.message)
            return None
        metadata["file_path"] = str(path)
        doc_id, page = record.page_key
        return ImageNode(id_=f"{doc_id}:{page}:page", image_path=str(path), metadata=metadata,
                         relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)},
                         excluded_llm_metadata_keys=_hidden(metadata),
                         excluded_embed_metadata_keys=list(metadata))

"""LangChain: ``VisionRetriever``, a ``BaseRetriever`` over a collection.

Needs ``langchain-core`` (``pip install 'vision-retriever[langchain]'``)::

    from retriever.integrations.langchain import VisionRetriever

    docs = VisionRetriever(collection="papers", k=4).invoke("what limits cycle life?")
    docs[0].page_content, docs[0].metadata["source"], docs[0].metadata["bbox"]

Each ``Document`` is one returned region: ``page_content`` is its text, ``metadata`` the
fields of ``retriever.integrations._records`` (source, page, bbox, score, doc_id, ...), and
``id`` is ``doc_id:page:region``.
"""

from __future__ import annotations

__all__ = ["VisionRetriever"]

from pathlib import Path
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import Field, PrivateAttr

from ..sdk import Retriever
from ._records import DEFAULT_K, RegionRecord, check_k, open_retriever, search_records


def _document(record: RegionRecord) -> Document:
    return Document(id=record.id, page_content=record.text, metadata=dict(record.metadata))


class VisionRetriever(BaseRetriever):
    """The ``k`` best regions of a collection for a query, as LangChain ``Document``s.

    Give ``collection`` (and ``data_dir``; default: ``$RETRIEVER_HOME`` or the per-user
    data directory), or an open ``retriever``. ``k`` is the number of Documents (regions,
    not pages); ``invoke(query, k=N)`` overrides it for one call. ``search_kwargs`` go to
    ``Retriever.search`` (``mode``, ``grounding``, ``max_regions``); with ``crop_dir``
    the regions are cropped there and ``metadata["crop_path"]`` names each PNG.
    """

    collection: str | None = None
    data_dir: str | Path | None = None
    k: int = Field(default=DEFAULT_K, ge=1)
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    crop_dir: str | Path | None = None
    # excluded from serialization: an open collection is not data
    retriever: Retriever | None = Field(default=None, exclude=True)

    _sdk: Retriever = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        # made now (it opens nothing yet), so conflicting arguments fail at construction
        self._sdk = open_retriever(self.retriever, self.collection, self.data_dir)

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None) -> list[Document]:
        records = search_records(self._sdk, query, check_k(self.k if k is None else k),
                                 search_kwargs=self.search_kwargs, crop_dir=self.crop_dir)
        return [_document(record) for record in records]

    # BaseRetriever's default async path drops extra arguments such as ``k``; the search
    # itself is blocking (model and disk), so it runs on the default executor
    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun,
                                       k: int | None = None) -> list[Document]:
        return await run_in_executor(None, self._get_relevant_documents, query,
                                     run_manager=run_manager.get_sync(), k=k)

"""The LangChain adapter: langchain-tests' standard retriever suite, then content checks on a
real collection of the samples."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from langchain_core.documents import Document  # noqa: E402
from langchain_tests.integration_tests import RetrieversIntegrationTests  # noqa: E402

from rag_collection import (  # noqa: E402
    COLLECTION,
    INVOICE_ANSWER,
    INVOICE_QUERY,
    TRAINEES_ANSWER,
    TRAINEES_QUERY,
)
from retriever import Retriever  # noqa: E402
from retriever.errors import UsageError  # noqa: E402
from retriever.integrations.langchain import VisionRetriever  # noqa: E402


# The standard suite's async test carries no mark (it expects asyncio_mode=auto, which
# would change every other test package): marking the class runs it under pytest-asyncio,
# and the warning that the mark means nothing to the sync tests is expected.
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio'")
class TestStandardRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _collection(self, sample_home: Path) -> None:
        self.home = sample_home

    @property
    def retriever_constructor(self) -> type[VisionRetriever]:
        return VisionRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"collection": COLLECTION, "data_dir": self.home}

    @property
    def retriever_query_example(self) -> str:
        return INVOICE_QUERY


@pytest.fixture
def home(sample_home: Path) -> Path:
    return sample_home


def test_each_document_is_one_region_with_its_page_and_box(home):
    docs = VisionRetriever(collection=COLLECTION, data_dir=home, k=3).invoke(INVOICE_QUERY)
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert INVOICE_ANSWER in top.page_content
    meta = top.metadata
    assert Path(meta["source"]).name == "invoice.pdf" and meta["page"] == 1
    assert meta["rank"] == 1 and meta["region"] == 1 and meta["level"] == "paragraph"
    x0, y0, x1, y1 = meta["bbox"]
    assert 0 <= x0 < x1 <= 1 and 0.6 < y0 < y1 < 0.8  # the payment-terms paragraph
    assert top.id == f"{meta['doc_id']}:1:1"
    # regions of one page come best first, and no region repeats
    scores = [d.metadata["score"] for d in docs if d.metadata["rank"] == 1]
    assert scores == sorted(scores, reverse=True)
    assert len({d.id for d in docs}) == 3


def test_the_answer_is_the_top_document_for_another_question(home):
    top = VisionRetriever(collection=COLLECTION, data_dir=home).invoke(TRAINEES_QUERY)[0]
    assert TRAINEES_ANSWER in top.page_content
    assert (Path(top.metadata["source"]).name, top.metadata["page"]) == ("annual-report.pdf", 2)


def test_an_open_retriever_can_be_given_and_k_is_per_call(home):
    with Retriever(COLLECTION, data_dir=home) as sdk:
        lc = VisionRetriever(retriever=sdk, k=1)
        assert len(lc.invoke(INVOICE_QUERY)) == 1
        many = lc.invoke(INVOICE_QUERY, k=12)  # more than one page holds: later pages too
        assert len(many) == 12 and len({d.metadata["doc_id"] for d in many}) >= 2
        assert [d.metadata["rank"] for d in many] == sorted(d.metadata["rank"] for d in many)
        two = asyncio.run(lc.ainvoke(TRAINEES_QUERY, k=2))
        assert len(two) == 2 and TRAINEES_ANSWER in two[0].page_content
    with pytest.raises(UsageError, match="not both"):
        VisionRetriever(retriever=sdk, collection=COLLECTION)


def test_crops_and_search_options_are_passed_through(home, tmp_path):
    lc = VisionRetriever(collection=COLLECTION, data_dir=home, k=2, crop_dir=tmp_path,
                         search_kwargs={"mode": "lexical", "max_regions": 1})
    docs = lc.invoke("kiln technician programme")
    assert TRAINEES_ANSWER in docs[0].page_content
    assert all(d.metadata["region"] == 1 for d in docs)  # one region per page
    assert all(Path(d.metadata["crop_path"]).is_file() for d in docs)
    assert "retriever" not in lc.model_dump()  # an open collection is not serialised

"""The LlamaIndex adapter on a real collection of the samples: region text nodes, page
image nodes, and a query engine built on it (with LlamaIndex's offline MockLLM)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.llms import MockLLM  # noqa: E402
from llama_index.core.schema import (  # noqa: E402
    ImageNode,
    MetadataMode,
    NodeRelationship,
    TextNode,
)
from PIL import Image  # noqa: E402

from rag_collection import (  # noqa: E402
    COLLECTION,
    INVOICE_ANSWER,
    INVOICE_QUERY,
    TRAINEES_ANSWER,
    TRAINEES_QUERY,
)
from retriever import Retriever  # noqa: E402
from retriever.errors import UsageError  # noqa: E402
from retriever.ingest import content_hash  # noqa: E402
from retriever.integrations.llamaindex import VisionRetriever  # noqa: E402


@pytest.fixture
def home(sample_home: Path) -> Path:
    return sample_home


def test_region_nodes_follow_the_image_node_of_their_page(home, tmp_path):
    retriever = VisionRetriever(collection=COLLECTION, data_dir=home, k=3, image_dir=tmp_path)
    found = retriever.retrieve(TRAINEES_QUERY)
    texts = [f for f in found if not isinstance(f.node, ImageNode)]
    images = [f for f in found if isinstance(f.node, ImageNode)]
    assert len(texts) == 3 and all(isinstance(f.node, TextNode) for f in texts)
    # the first node is the image of the page that answers, then its best region
    page, top = found[0].node, found[1].node
    assert isinstance(page, ImageNode) and top is texts[0].node
    assert TRAINEES_ANSWER in top.text
    assert (Path(top.metadata["source"]).name, top.metadata["page"]) == ("annual-report.pdf", 2)
    assert len(top.metadata["bbox"]) == 4 and texts[0].score == pytest.approx(top.metadata["score"], abs=1e-6)
    assert top.relationships[NodeRelationship.PARENT].node_id == page.node_id
    assert top.relationships[NodeRelationship.SOURCE].node_id == top.metadata["doc_id"]
    # one image per page, a real PNG of the page, named in metadata["file_path"]
    assert len(images) == len({(f.node.metadata["doc_id"], f.node.metadata["page"])
                               for f in texts})
    path = Path(page.metadata["file_path"])
    assert page.image_path == str(path) and path.parent == tmp_path
    assert page.metadata["doc_id"] == content_hash(page.metadata["source"])
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert abs(image.width / image.height - 1241 / 1754) < 0.01  # an A4 page, upright
    # the LLM reads where a region is and its text, not boxes and scores
    shown = top.get_content(MetadataMode.LLM)
    assert "page: 2" in shown and "bbox" not in shown and TRAINEES_ANSWER in shown


def test_page_images_are_rendered_once_and_can_be_left_out(home, tmp_path):
    retriever = VisionRetriever(collection=COLLECTION, data_dir=home, k=1, image_dir=tmp_path)
    first = retriever.retrieve(INVOICE_QUERY)[0].node.metadata["file_path"]
    stamp = Path(first).stat().st_mtime_ns
    assert retriever.retrieve(INVOICE_QUERY)[0].node.metadata["file_path"] == first
    assert Path(first).stat().st_mtime_ns == stamp and len(list(tmp_path.iterdir())) == 1
    plain = VisionRetriever(collection=COLLECTION, data_dir=home, k=2, page_images=False)
    assert [type(f.node) for f in plain.retrieve(INVOICE_QUERY)] == [TextNode, TextNode]


def test_an_open_retriever_async_and_a_query_engine(home, tmp_path):
    with Retriever(COLLECTION, data_dir=home) as sdk:
        retriever = VisionRetriever(retriever=sdk, k=2, image_dir=tmp_path)
        found = asyncio.run(retriever.aretrieve(INVOICE_QUERY))
        assert INVOICE_ANSWER in found[1].node.text
        engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
        response = engine.query(INVOICE_QUERY)
        assert any(INVOICE_ANSWER in n.node.get_content() for n in response.source_nodes)
    with pytest.raises(UsageError, match="not both"):
        VisionRetriever(retriever=sdk, data_dir=home)
    with pytest.raises(UsageError, match="k must be"):
        VisionRetriever(collection=COLLECTION, data_dir=home, k=0)

"""The Haystack adapter on a real collection of the samples: a pipeline with it (and a
prompt builder) dumped to YAML, loaded back and run; warm-up, async and serialisation."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no network in tests
pytest.importorskip("haystack")

from haystack import AsyncPipeline, Document, Pipeline  # noqa: E402
from haystack.components.builders import PromptBuilder  # noqa: E402

from rag_collection import (  # noqa: E402
    COLLECTION,
    INVOICE_ANSWER,
    INVOICE_QUERY,
    TRAINEES_ANSWER,
    TRAINEES_QUERY,
)
from retriever import Retriever  # noqa: E402
from retriever.errors import CollectionNotFoundError, UsageError  # noqa: E402
from retriever.integrations.haystack import VisionRetriever  # noqa: E402

TEMPLATE = ("Answer from these passages.\n{% for d in documents %}"
            "[{{ d.meta.file_path }} p.{{ d.meta.page_number }}] {{ d.content }}\n"
            "{% endfor %}Question: {{ question }}")


@pytest.fixture
def home(sample_home: Path) -> Path:
    return sample_home


def _rag_pipeline(home: Path) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("retriever", VisionRetriever(collection=COLLECTION,
                                                        data_dir=str(home), k=2))
    pipeline.add_component("prompt", PromptBuilder(template=TEMPLATE,
                                                   required_variables=["documents", "question"]))
    pipeline.connect("retriever.documents", "prompt.documents")
    return pipeline


def test_a_pipeline_survives_yaml_and_answers_with_the_right_region(home):
    text = _rag_pipeline(home).dumps()
    assert "retriever.integrations.haystack.VisionRetriever" in text and "collection: samples" in text
    loaded = Pipeline.loads(text)
    out = loaded.run({"retriever": {"query": TRAINEES_QUERY},
                      "prompt": {"question": TRAINEES_QUERY}},
                     include_outputs_from={"retriever"})
    documents = out["retriever"]["documents"]
    assert len(documents) == 2 and all(isinstance(d, Document) for d in documents)
    top = documents[0]
    assert TRAINEES_ANSWER in top.content and top.score == max(d.score for d in documents)
    assert Path(top.meta["file_path"]).name == "annual-report.pdf"
    assert top.meta["page_number"] == top.meta["page"] == 2
    x0, y0, x1, y1 = top.meta["bbox"]
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert top.id == f"{top.meta['doc_id']}:2:1"
    json.dumps([d.meta for d in documents])  # plain JSON, as document stores want it
    prompt = out["prompt"]["prompt"]
    assert f"annual-report.pdf p.2] {top.content}" in prompt


def test_top_k_per_run_and_an_open_retriever_serialises_by_name(home):
    with Retriever(COLLECTION, data_dir=home) as sdk:
        component = VisionRetriever(retriever=sdk, k=1)
        component.warm_up()
        assert len(component.run(INVOICE_QUERY)["documents"]) == 1
        many = component.run(INVOICE_QUERY, top_k=8)["documents"]
        assert len(many) == 8 and INVOICE_ANSWER in many[0].content
        data = component.to_dict()
    params = data["init_parameters"]
    assert params == {"collection": COLLECTION, "data_dir": str(home), "k": 1,
                      "search_kwargs": {}, "crop_dir": None}
    again = VisionRetriever.from_dict(data)
    assert INVOICE_ANSWER in again.run(INVOICE_QUERY)["documents"][0].content
    with pytest.raises(UsageError, match="not both"):
        VisionRetriever(retriever=sdk, collection=COLLECTION)


def test_warm_up_fails_for_a_missing_collection_and_lexical_mode_loads_no_model(home):
    with pytest.raises(CollectionNotFoundError):
        VisionRetriever(collection="nothing-here", data_dir=str(home)).warm_up()
    lexical = VisionRetriever(collection=COLLECTION, data_dir=str(home),
                              search_kwargs={"mode": "lexical"})
    lexical.warm_up()
    assert lexical._sdk._encoder is None
    top = lexical.run("kiln technician programme")["documents"][0]
    assert TRAINEES_ANSWER in top.content


def test_an_async_pipeline_runs_it_too(home):
    pipeline = AsyncPipeline()
    pipeline.add_component("retriever", VisionRetriever(collection=COLLECTION,
                                                        data_dir=str(home), k=1))
    out = asyncio.run(pipeline.run_async({"retriever": {"query": INVOICE_QUERY}}))
    assert INVOICE_ANSWER in out["retriever"]["documents"][0].content

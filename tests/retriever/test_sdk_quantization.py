"""The SDK's quantization and rerank arguments, with an encoder that needs no model."""

from __future__ import annotations

import shutil

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.errors import UsageError



pytestmark = pytest.mark.usefixtures("example_plugin")


def test_quantized_collection_round_trip(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SAMPLES / "invoice.pdf", docs)
    shutil.copy(SAMPLES / "slide.pdf", docs)
    with Retriever("q", data_dir=tmp_path, encoder="example/hashing", quantization="int8") as r:
        assert r.index([docs]).pages == 2
        assert r.info()["quantization"] == "int8"
        exact = r.search("IBAN bank transfer", k=2, rerank=100)
        shortlisted = r.search("IBAN bank transfer", k=1, rerank=1)
        assert exact[0].source.endswith("invoice.pdf") and exact[0].regions
        assert [h.source for h in shortlisted] == [exact[0].source]
    with Retriever("q", data_dir=tmp_path) as r:  # reopened: the stored format is used
        assert r.info()["quantization"] == "int8"
    with pytest.raises(UsageError, match="quantization 'int8'"):
        Retriever("q", data_dir=tmp_path, quantization="binary").info()
    with pytest.raises(UsageError, match="quantization"):
        Retriever("x", data_dir=tmp_path, quantization="fp4")


def test_rerank_on_a_backend_without_it_is_a_clear_error(tmp_path):
    doc = tmp_path / "invoice.pdf"
    shutil.copy(SAMPLES / "invoice.pdf", doc)
    with Retriever("m", data_dir=tmp_path, encoder="example/hashing", indexer="memory") as r:
        r.index([doc])
        assert r.search("IBAN", k=1)
        with pytest.raises(UsageError, match="rerank"):
            r.search("IBAN", k=1, rerank=5)

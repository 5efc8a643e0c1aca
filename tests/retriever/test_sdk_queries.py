"""An empty query is a usage error in the SDK itself, so the CLI and every caller get it."""

from __future__ import annotations


import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.errors import ExitCode, UsageError

from example_plugin_host import register_example_plugin


@pytest.fixture
def indexed(tmp_path) -> Retriever:
    register_example_plugin()
    r = Retriever("t", data_dir=tmp_path, encoder="example/hashing", ocr=None)
    assert r.index([SAMPLES / "invoice.pdf"]).ok
    yield r
    r.close()


@pytest.mark.parametrize("query", ["", " ", "\t\n "])
def test_an_empty_query_is_a_usage_error_not_arbitrary_hits(indexed, query):
    with pytest.raises(UsageError, match="empty query") as info:
        indexed.search(query)
    assert info.value.exit_code == ExitCode.USAGE
    with pytest.raises(UsageError, match="empty query"):
        indexed.search_many(["bank transfer", query])
    assert indexed.search("bank transfer")  # a real one still answers


def test_an_empty_query_is_refused_before_the_collection_is_opened(tmp_path):
    with pytest.raises(UsageError, match="empty query"):
        Retriever("missing", data_dir=tmp_path).search("")

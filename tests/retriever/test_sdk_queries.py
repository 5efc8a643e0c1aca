"""An empty query is a usage error in the SDK itself, so the CLI and every caller get it."""

from __future__ import annotations

import sys

import pytest

from repo_paths import REPO, SAMPLES
from retriever import Retriever, plugin_host
from retriever.errors import ExitCode, UsageError

sys.path.insert(0, str(REPO / "tests" / "plugins" / "example_plugin"))
import retriever_example_plugin  # noqa: E402  - a plugin whose encoder needs no model


@pytest.fixture
def indexed(tmp_path) -> Retriever:
    plugin_host.get_plugin_manager().register(retriever_example_plugin, name="example")
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

"""Finding and opening a collection's indexer: the errors for a missing collection and a
backend other than the one asked for, and a created collection's manifest."""

from __future__ import annotations

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.collection_open import collection_info, find_backend, open_indexer
from retriever.errors import CollectionNotFoundError, RetrieverError


pytestmark = pytest.mark.usefixtures("example_plugin")


def _open(path, **asked):
    arguments = dict(where_missing=path.parent, backend=find_backend(path),
                     asked_backend=None, indexer_options={}, quantization=None,
                     compress=None, create_with=None)
    return open_indexer("c", path, None, **{**arguments, **asked})


def test_a_missing_collection_names_where_it_was_looked_for(tmp_path):
    assert find_backend(tmp_path / "nowhere") is None
    assert find_backend(tmp_path) is None  # a directory without a backend's sub-directory
    with pytest.raises(CollectionNotFoundError, match=f"no collection named 'c' in {tmp_path}"):
        _open(tmp_path / "c")


def test_an_existing_collection_keeps_its_backend_and_reports_what_it_holds(tmp_path):
    with Retriever("c", data_dir=tmp_path, encoder="example/hashing", indexer="faiss",
                   compress="merge") as r:
        r.index([SAMPLES / "invoice.pdf"])
        path = r.path
    assert find_backend(path) == "faiss"
    with pytest.raises(RetrieverError, match="uses the faiss backend, not lancedb"):
        _open(path, asked_backend="lancedb")
    indexer = _open(path)
    try:
        info = collection_info("c", path, indexer)
    finally:
        indexer.close()
    assert info["backend"] == "faiss" and info["compressor"] == "merge:2"
    assert info["documents"] == 1 and info["pages"] == 1
    assert info["encoder"]["name"] == "example/hashing"

"""Indexer options through the SDK: typed by the backend's declarations, build-time ones
recorded in the manifest, search-time ones per search (FAISS rerank, nprobe, candidates)."""

from __future__ import annotations

import json
import shutil

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.errors import UsageError


pytest.importorskip("faiss")


pytestmark = pytest.mark.usefixtures("example_plugin")


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("invoice.pdf", "slide.pdf", "annual-report.pdf"):
        shutil.copy(SAMPLES / name, folder)
    return folder


def _new(tmp_path, name="f", indexer="faiss", **kwargs) -> Retriever:
    return Retriever(name, data_dir=tmp_path, encoder="example/hashing", indexer=indexer,
                     **kwargs)


def test_build_options_are_recorded_and_fixed(tmp_path, docs):
    with _new(tmp_path, indexer_options={"index_type": "HNSW", "dtype": "float32",
                                         "nprobe": "4"}) as r:
        r.index([docs])
        assert r.info()["indexer_options"] == {"index_type": "hnsw", "dtype": "float32"}
        assert r.indexer.nprobe == 4  # a search-time option, given when opened
    stored = json.loads((tmp_path / "collections" / "f" / "faiss" / "manifest.json").read_text())
    assert stored["indexer_options"] == {"index_type": "hnsw", "dtype": "float32"}
    with Retriever("f", data_dir=tmp_path, indexer_options={"index_type": "hnsw"}) as r:
        assert r.search("IBAN", k=1)  # the same value again is fine
    with pytest.raises(UsageError, match="built with indexer option index_type='hnsw', not "
                                         "'flat'"):
        Retriever("f", data_dir=tmp_path, indexer_options={"index_type": "flat"}).info()
    with Retriever("f", data_dir=tmp_path, indexer_options={"nprobe": 1, "candidates": 2}) as r:
        assert (r.indexer.nprobe, r.indexer.candidates) == (1, 2)  # search-time: any value


def test_unrecorded_build_options_count_as_their_defaults(tmp_path, docs):
    with _new(tmp_path) as r:
        r.index([docs / "invoice.pdf"])
        assert r.info()["indexer_options"] == {}
    with Retriever("f", data_dir=tmp_path, indexer_options={"dtype": "float16"}) as r:
        assert r.info()["pages"] == 1
    with pytest.raises(UsageError, match="dtype='float16', not 'float32'"):
        Retriever("f", data_dir=tmp_path, indexer_options={"dtype": "float32"}).info()


def test_rerank_and_search_options_on_faiss(tmp_path, docs):
    with _new(tmp_path, indexer_options={"index_type": "flat"}) as r:
        r.index([docs])
        best = r.search("IBAN bank transfer", k=2)
        assert r.search("IBAN bank transfer", k=2, rerank=1)[0].source == best[0].source
        tuned = r.search("IBAN bank transfer", k=2, indexer_options={
            "candidates": "1", "nprobe": "2", "token_k": 8, "threads": "1"})
        assert [h.source for h in tuned] == [h.source for h in best]
        with pytest.raises(UsageError, match="index_type cannot change per search"):
            r.search("IBAN", k=1, indexer_options={"index_type": "hnsw"})
        with pytest.raises(UsageError, match="indexer 'faiss' has no option bogus"):
            r.search("IBAN", k=1, indexer_options={"bogus": 1})
        with pytest.raises(UsageError, match="nprobe='many'"):
            r.search("IBAN", k=1, indexer_options={"nprobe": "many"})


def test_rerank_on_a_quantized_faiss_collection(tmp_path, docs):
    with _new(tmp_path, quantization="int8") as r:
        r.index([docs])
        exact = r.search("IBAN bank transfer", k=3, rerank=100)
        shortlisted = r.search("IBAN bank transfer", k=1, rerank=1)
        assert [h.source for h in shortlisted] == [exact[0].source]
        assert r.info()["quantization"] == "int8"
    with pytest.raises(UsageError, match="disagree"):
        _new(tmp_path, "g", quantization="int8", indexer_options={"quantization": "binary"})


def test_lancedb_options_and_rerank_without_codes(tmp_path, docs):
    with _new(tmp_path, "l", indexer="lancedb", indexer_options={"dtype": "float32"}) as r:
        r.index([docs / "invoice.pdf"])
        assert r.info()["indexer_options"] == {"dtype": "float32"}
        assert r.search("IBAN", k=1, indexer_options={"threads": 1})
        with pytest.raises(UsageError, match="rerank has no meaning"):
            r.search("IBAN", k=1, rerank=5)
    with pytest.raises(UsageError, match="indexer 'lancedb'"):
        _new(tmp_path, "l2", indexer="lancedb", indexer_options={"nprobe": 2}).index(
            [docs / "invoice.pdf"])


def test_a_manifest_written_before_indexer_options_still_opens(tmp_path, docs):
    with _new(tmp_path) as r:
        r.index([docs / "invoice.pdf"])
    path = tmp_path / "collections" / "f" / "faiss" / "manifest.json"
    old = json.loads(path.read_text())
    del old["indexer_options"], old["encoder"]["model_id_scheme"]
    path.write_text(json.dumps(old))
    with Retriever("f", data_dir=tmp_path) as r:
        assert r.info()["indexer_options"] == {}
        assert r.search("IBAN", k=1)[0].source.endswith("invoice.pdf")
        r.index([docs / "slide.pdf"])  # the encoder rebuilt from it is still compatible
        assert r.info()["documents"] == 2

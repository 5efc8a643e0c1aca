"""``Retriever.search(mode=...)``: hybrid by default, vector and lexical on request, on real
sample PDFs with the example plugin's model-free hashing encoder."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.errors import UsageError

from example_plugin_host import register_example_plugin

FILES = ("annual-report.pdf", "invoice.pdf", "slide.pdf")
PHRASE = "kiln technician programme"  # a rare exact phrase on annual-report.pdf page 2


pytestmark = pytest.mark.usefixtures("example_plugin")


def _index(home: Path, indexer: str = "lancedb") -> None:
    docs = home / "docs"
    docs.mkdir(exist_ok=True)
    for name in FILES:
        shutil.copy(SAMPLES / name, docs)
    with Retriever("t", data_dir=home, encoder="example/hashing", indexer=indexer) as r:
        assert r.index([docs]).ok


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    register_example_plugin()
    home = tmp_path_factory.mktemp("hybrid")
    _index(home)
    return home


@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_a_page_with_an_exact_rare_phrase_ranks_first(home, mode):
    with Retriever("t", data_dir=home) as r:
        hit = r.search(PHRASE, k=3, mode=mode)[0]
    assert (Path(hit.source).name, hit.page) == ("annual-report.pdf", 2)
    assert PHRASE in hit.regions[0].text  # lexical evidence picks the region too


def test_hybrid_is_the_default_and_vector_mode_is_the_vector_ranking(home):
    query = "apprentices kiln technician"
    with Retriever("t", data_dir=home) as r:
        default = r.search(query, k=3)
        assert [(h.doc_id, h.page) for h in default] == [
            (h.doc_id, h.page) for h in r.search(query, k=3, mode="hybrid")]
        vector = r.search(query, k=3, mode="vector")
        raw = r.indexer.search(r.encoder.encode_queries([query]), 3)[0]
    assert [f"{h.doc_id}:{h.page}" for h in vector] == [s.key for s in raw]
    assert [h.score for h in vector] == pytest.approx([s.score for s in raw])


def test_lexical_mode_loads_no_encoder_and_misses_what_shares_no_word(home):
    with Retriever("t", data_dir=home) as r:
        assert r.search("zzyzx qwertyuiop", mode="lexical") == []
        assert r.search("invoice IBAN", k=2, mode="lexical")[0].source.endswith("invoice.pdf")
        assert r._encoder is None


def test_an_unknown_mode_is_a_usage_error(home):
    with Retriever("t", data_dir=home) as r, pytest.raises(UsageError, match="search mode"):
        r.search("anything", mode="semantic")  # type: ignore[arg-type]


def test_faiss_collections_search_hybrid_too(tmp_path):
    pytest.importorskip("faiss")
    _index(tmp_path, indexer="faiss")
    with Retriever("t", data_dir=tmp_path) as r:
        for mode in ("hybrid", "lexical"):
            hit = r.search(PHRASE, k=2, mode=mode)[0]
            assert (Path(hit.source).name, hit.page) == ("annual-report.pdf", 2)


def test_a_backend_without_full_text_falls_back_to_vectors_with_one_warning(tmp_path, caplog):
    with Retriever("t", data_dir=tmp_path, encoder="example/hashing", indexer="memory") as r, \
            caplog.at_level(logging.WARNING):
        r.index([SAMPLES / name for name in FILES])  # the memory backend keeps nothing
        hybrid = r.search_many([PHRASE, "invoice"], k=2)
        vector = r.search_many([PHRASE, "invoice"], k=2, mode="vector")
    assert [[h.page for h in q] for q in hybrid] == [[h.page for h in q] for q in vector]
    warnings = [m for m in caplog.messages if "vector search only" in m]
    assert len(warnings) == 1 and "memory" in warnings[0]


def test_an_old_read_only_collection_without_full_text_searches_by_vectors(tmp_path, caplog,
                                                                         monkeypatch):
    from indexers.lancedb import fulltext
    from retriever.errors import RetrieverError

    _index(tmp_path)
    with Retriever("t", data_dir=tmp_path) as r:  # as a collection made before full text
        r.indexer._table.drop_index(fulltext.INDEX_NAME)
        r.indexer._table.drop_columns([fulltext.TERMS])

    def read_only(self, table):
        raise RetrieverError("collection 't' has no full-text index yet and it could not be "
                             "built: read-only file system")

    monkeypatch.setattr(fulltext.FullText, "ensure", read_only)
    with Retriever("t", data_dir=tmp_path) as r, caplog.at_level(logging.WARNING):
        hits = r.search(PHRASE, k=2)
        assert [h.page for h in hits] == [h.page for h in r.search(PHRASE, k=2, mode="vector")]
    assert any("read-only" in m and "vector search only" in m for m in caplog.messages)

"""The full-text side of the LanceDB and FAISS backends (``LexicalIndexer``).

LanceDB keeps region terms in the pages table under its own inverted index; FAISS builds
BM25 in memory from the stored region text. Both must find what was added, forget what was
deleted or replaced (through the indexer's own ``replace``), survive a reopen, and name the
region a match is in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retriever import plugin_host
from retriever.manifest import EncoderIdentity, Manifest
from retriever.protocols import LexicalIndexer
from retriever.search.lexical import analyze
from retriever.types import MultiVector, PageRecord, Region

DIM = 8
ENCODER = EncoderIdentity(name="test/random", model_id="random", revision="r1", dim=DIM,
                          kind="multi")
FILLER = ["The shell reads a line of input and splits it into words",
          "Each word is expanded and the command is run",
          "Variables hold strings and the environment is passed on"]
RARE = "the zygomorphic quokka protocol"


def _record(doc: str, page: int, texts: list[str]) -> PageRecord:
    rng = np.random.default_rng(sum(map(ord, doc)) * 100 + page)
    regions = [Region((0.1, 0.1 * i, 0.9, 0.1 * i + 0.08), t, source="text_layer")
               for i, t in enumerate(texts)]
    boxes = np.array([r.bbox for r in regions] or [[0, 0, 1, 1]], np.float32)
    return PageRecord(doc, f"/docs/{doc}.pdf", page, 100, 140,
                      MultiVector.normalized(rng.normal(size=(len(boxes), DIM)), boxes),
                      regions)


def _corpus() -> list[PageRecord]:
    pages = [_record(f"doc{d}", p, [FILLER[(d + p + i) % 3] for i in range(3)])
             for d in range(3) for p in (1, 2)]
    pages.append(_record("rare", 1, [FILLER[0], f"Enable {RARE} before the handshake",
                                     FILLER[1]]))
    return pages


def _open(backend: str, path: Path, manifest: Manifest | None = None):
    options = {"index_type": "flat"} if backend == "faiss" else {}
    return plugin_host.get_registry().create("indexer", backend, path=path / backend,
                                             manifest=manifest, **options)


@pytest.fixture(params=["lancedb", "faiss"])
def backend(request) -> str:
    if request.param == "faiss":
        pytest.importorskip("faiss")
    return request.param


def _top(indexer, text: str, k: int = 10) -> list[tuple[str, int]]:
    return [(h.key, h.region) for h in indexer.lexical_search([analyze(text)], k)[0]]


def test_an_exact_rare_phrase_is_found_in_its_region(backend, tmp_path):
    indexer = _open(backend, tmp_path, Manifest(encoder=ENCODER, indexer=backend))
    assert isinstance(indexer, LexicalIndexer)
    indexer.add(_corpus())
    assert _top(indexer, "zygomorphic quokka protocol")[0] == ("rare:1", 1)
    assert _top(indexer, "Quokka protocols?")[0] == ("rare:1", 1)  # stemmed, case folded
    assert _top(indexer, "what is the") == []  # nothing but stop words
    assert indexer.page_terms(["rare:1"])["rare:1"][1] == "enabl zygomorphic quokka " \
        "protocol handshak"
    indexer.close()
    reopened = _open(backend, tmp_path)
    assert _top(reopened, "zygomorphic quokka")[0] == ("rare:1", 1)


def test_added_replaced_and_deleted_pages_are_seen_at_once(backend, tmp_path):
    indexer = _open(backend, tmp_path, Manifest(encoder=ENCODER, indexer=backend))
    indexer.add(_corpus())
    indexer.add([_record("late", 1, ["a quokka arrives later", FILLER[2]])])
    assert {k for k, _ in _top(indexer, "quokka")} == {"rare:1", "late:1"}
    # the rare document's new version no longer holds the phrase: one commit
    indexer.replace([_record("rare2", 1, [FILLER[1], "plain vanilla text"])], delete=["rare"])
    assert {k for k, _ in _top(indexer, "quokka")} == {"late:1"}
    # relinking a document (a moved file) keeps its terms
    indexer.replace([], paths={"late": ["/elsewhere/late.pdf"]})
    assert _top(indexer, "quokka") == [("late:1", 0)]
    indexer.delete(["late"])
    assert _top(indexer, "quokka") == []
    assert _top(indexer, "plain vanilla") == [("rare2:1", 1)]


def test_lancedb_rebuilds_a_stale_index_after_commits(tmp_path, monkeypatch):
    from indexers.lancedb import fulltext

    monkeypatch.setattr(fulltext, "_STALE_ROWS", 2)
    indexer = _open("lancedb", tmp_path, Manifest(encoder=ENCODER, indexer="lancedb"))
    indexer.add(_corpus()[:2])

    def unindexed() -> int:
        info = next(i for i in indexer._table.list_indices() if i.name == fulltext.INDEX_NAME)
        return info.num_unindexed_rows

    assert unindexed() == 0  # built after the first commit
    indexer.add(_corpus()[2:4])
    assert unindexed() == 2  # scanned until there are more than _STALE_ROWS
    indexer.add(_corpus()[4:])
    assert unindexed() == 0
    assert _top(indexer, "zygomorphic")[0] == ("rare:1", 1)


def test_lancedb_collection_without_terms_gets_them_on_first_lexical_search(tmp_path):
    from indexers.lancedb import fulltext

    indexer = _open("lancedb", tmp_path, Manifest(encoder=ENCODER, indexer="lancedb"))
    indexer.add(_corpus())
    # what a collection made before lexical search looks like: no column, no index
    indexer._table.drop_index(fulltext.INDEX_NAME)
    indexer._table.drop_columns([fulltext.TERMS])
    indexer.close()
    old = _open("lancedb", tmp_path)
    assert not fulltext.has_terms(old._table.schema)
    assert old.search([_corpus()[0].embedding], 1)[0][0].key  # vectors work as before
    assert _top(old, "zygomorphic quokka")[0] == ("rare:1", 1)
    assert fulltext.has_terms(old._table.schema)
    # pages written after the migration carry their terms like any other
    old.add([_record("late", 1, ["a quokka arrives later"])])
    assert {k for k, _ in _top(old, "quokka")} == {"rare:1", "late:1"}
    assert len(old.get(["late:1"])[0].regions) == 1

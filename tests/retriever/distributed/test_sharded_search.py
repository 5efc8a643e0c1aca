"""Sharded search on a local Ray cluster: a collection of the samples split in two, searched
by one actor per shard, against the same collection unsharded (example/hashing encoder).

One Ray cluster and one ShardedRetriever serve the module (actors take seconds to start);
the tests that index into the shards come last, after those comparing with the source."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from example_plugin_host import register_example_plugin
from repo_paths import SAMPLES

from retriever import Retriever
from retriever.distributed import (
    ShardedCollection,
    ShardedRetriever,
    find_shards,
    shard_collection,
    shard_name,
    shard_of,
)
from retriever.errors import UsageError

pytestmark = pytest.mark.usefixtures("example_plugin")

# PDFs with a text layer (no OCR, so the fixture stays fast), and revised copies of some:
# the same pages under another content hash. The three samples all hash to shard 0 of 2;
# the revisions chosen here hash to shard 1, so both shards hold documents.
FILES = ("annual-report.pdf", "invoice.pdf", "slide.pdf")
REVISED = (("annual-report.pdf", 1), ("invoice.pdf", 1))
LATER = (("slide.pdf", 1), ("annual-report.pdf", 2))  # indexed after the split: shards 0, 1
QUERIES = [q["query"] for q in json.loads((SAMPLES / "queries.json").read_text())][:8] + [
    "IBAN bank transfer", "kiln technician programme", "invoice total due"]


def _revised(name: str, revision: int, folder: Path) -> Path:
    """A copy of a sample with a PDF comment appended: same pages, new doc_id."""
    target = folder / f"{Path(name).stem}-rev{revision}.pdf"
    target.write_bytes((SAMPLES / name).read_bytes() + f"\n% revision {revision}\n".encode())
    return target


def _same_ranking(have, want) -> None:
    """Equal scores (to 1e-5: the shards' processes may sum a matmul in another order than
    this one, which moves the last bits) and, above the k-th score, the same pages with the
    same regions; pages tied at the cut (the test's duplicated documents) may differ."""
    assert [round(h.score, 5) for h in have] == [round(h.score, 5) for h in want]
    assert [h.rank for h in have] == list(range(1, len(want) + 1))
    cut = round(want[-1].score, 5) if want else 0.0

    def above(hits):
        return {(h.doc_id, h.page, h.source,
                 tuple((r.bbox, r.text, round(r.score, 5)) for r in h.regions))
                for h in hits if round(h.score, 5) > cut}

    assert above(have) == above(want)




@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    register_example_plugin()
    home = tmp_path_factory.mktemp("sharded")
    docs = home / "docs"
    docs.mkdir()
    for name in FILES:
        shutil.copy(SAMPLES / name, docs)
    for name, revision in REVISED:
        _revised(name, revision, docs)
    with Retriever("all", data_dir=home, encoder="example/hashing", ocr=None) as r:
        assert r.index([docs], workers=0).ok
    report = shard_collection("all", 2, data_dir=home)
    assert report.documents == [3, 2]
    return home


@pytest.fixture(scope="module")
def sharded(cluster, home):
    with ShardedRetriever("all", data_dir=home, setup=register_example_plugin,
                          actor_options={"num_cpus": 0.5}) as s:
        yield s


def test_shards_partition_the_documents_exactly(home):
    with Retriever("all", data_dir=home) as r:
        whole = r.documents()
        source_info = r.info()
    collection = ShardedCollection("all", data_dir=home)
    assert collection.shards == find_shards("all", home) == 2
    seen: dict[str, str] = {}
    for index in range(2):
        with collection.retriever(index) as shard:
            info = shard.info()
            for doc_id in shard.documents():
                assert doc_id not in seen  # no document in two shards
                assert shard_of(doc_id, 2) == index
                seen[doc_id] = shard.collection
            for field in ("encoder", "quantization", "compressor", "indexer_options"):
                assert info[field] == source_info[field]
    assert set(seen) == set(whole)  # none lost
    assert collection.documents() == whole  # paths kept as recorded
    assert len(set(seen.values())) == 2  # the samples do land in both shards
    assert collection.info()["pages"] == source_info["pages"]


def test_a_re_run_copies_nothing_again(home):
    report = shard_collection("all", 2, data_dir=home)
    assert sum(report.documents) == 0 and report.skipped == len(FILES) + len(REVISED)


def test_vector_search_equals_the_unsharded_collection(home, sharded):
    with Retriever("all", data_dir=home) as r:
        expected = r.search_many(QUERIES, k=5, mode="vector")
    got = sharded.search_many(QUERIES, k=5, mode="vector")
    for want, have in zip(expected, got):
        _same_ranking(have, want)  # doc, page, score, regions
    assert {h.doc_id for hits in got for h in hits} == set(sharded.documents())


def test_vector_search_beyond_the_collection_returns_every_page(home, sharded):
    with Retriever("all", data_dir=home) as r:
        expected = r.search("annual report dividend", k=50, mode="vector", regions=False)
    got = sharded.search("annual report dividend", k=50, mode="vector", regions=False)
    _same_ranking(got, expected)
    assert len(got) == r.info()["pages"]


def test_context_is_the_sdk_s(home, sharded):
    # before the tests below add documents to the shards only
    with Retriever("all", data_dir=home) as r:
        expected = r.context("IBAN bank transfer", k=3, budget=300, mode="vector")
    got = sharded.context("IBAN bank transfer", k=3, budget=300, mode="vector")
    assert got.to_dict() == expected.to_dict() and got.citations


def test_over_one_shard_every_mode_equals_the_unsharded(cluster, home):
    """The fan-out driver itself adds nothing: over a single shard (the whole collection,
    so BM25 sees the same statistics) every mode returns the unsharded hits. The
    collection is quantized: in vector mode the codes' shortlist picks the 2 of its 5
    pages that are scored exactly, from the shard's copied codes. (int8 and distinct
    pages: the code stage breaks exact ties by row order, which a copy need not keep.)"""
    with Retriever("q", data_dir=home, encoder="example/hashing", ocr=None,
                   quantization="int8") as r:
        assert r.index([home / "docs" / name for name in FILES], workers=0).ok
    shard_collection("q", 1, data_dir=home)
    with ShardedRetriever("q", data_dir=home, setup=register_example_plugin,
                          actor_options={"num_cpus": 0.5}) as one, \
            Retriever("q", data_dir=home) as r:
        assert one.info()["shards"][0]["quantization"] == "int8"
        for mode in ("hybrid", "lexical", "vector"):
            expected = r.search_many(QUERIES, k=2, mode=mode, rerank=2)
            got = one.search_many(QUERIES, k=2, mode=mode, rerank=2)
            for have, want in zip(got, expected, strict=True):
                _same_ranking(have, want)


def test_a_shard_s_error_is_the_sdk_s_error(sharded):
    """Raised in an actor, seen as the unsharded search raises it (not a Ray wrapper)."""
    with pytest.raises(UsageError, match="rerank has no meaning") as raised:
        sharded.search("invoice", k=2, mode="vector", rerank=5)  # not quantized
    assert type(raised.value) is UsageError
    with pytest.raises(UsageError, match="no option"):
        sharded.search("invoice", k=2, indexer_options={"bogus": 1})


@pytest.mark.parametrize("mode", ["hybrid", "lexical"])
def test_hybrid_and_lexical_over_two_shards_find_the_exact_phrase(sharded, mode):
    """Two shards: BM25 statistics are per shard (approximate by design, README), but a
    rare exact phrase still decides."""
    hit = sharded.search("kiln technician programme", k=3, mode=mode)[0]
    # the phrase's page, of the report or of its revised copy (the same page, tied)
    assert (Path(hit.source).name, hit.page) in {("annual-report.pdf", 2),
                                                 ("annual-report-rev1.pdf", 2)}
    assert "kiln technician programme" in hit.regions[0].text


def test_incremental_index_routes_each_file_to_its_shard(sharded, home, tmp_path):
    register_example_plugin()
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(SAMPLES / "invoice.pdf", new / "invoice-copy.pdf")  # stored already
    for name, revision in LATER:
        _revised(name, revision, new)
    collection = ShardedCollection("all", 2, data_dir=home, ocr=None)
    before = collection.documents()
    report = collection.index([new], workers=0)
    assert report.ok, report.failed
    after = collection.documents()
    added = set(after) - set(before)
    assert len(added) == len(LATER)  # the copy was relinked, not added
    assert sorted(shard_of(d, 2) for d in added) == [0, 1]
    for index in range(2):
        with collection.retriever(index) as shard:
            held = set(shard.documents())
        assert {d for d in added if shard_of(d, 2) == index} <= held
        assert not {d for d in added if shard_of(d, 2) != index} & held
    copies = [paths for paths in after.values()
              if any(p.endswith("invoice-copy.pdf") for p in paths)]
    assert len(copies) == 1 and len(copies[0]) == 2  # recorded in the invoice's shard
    again = collection.index([new], workers=0)
    assert again.indexed == [] and len(again.unchanged) == len(LATER) + 1
    # the running ShardedRetriever sees them: each shard reads its latest commit
    assert set(sharded.documents()) == set(after)
    assert sharded.info()["documents"] == len(after)
    hits = sharded.search("kiln technician programme", k=100, mode="vector", regions=False)
    assert added <= {h.doc_id for h in hits}


def test_a_changed_file_moves_to_its_new_shard(home, tmp_path):
    register_example_plugin()
    collection = ShardedCollection("all", 2, data_dir=home, ocr=None)
    target = tmp_path / "report.pdf"
    target.write_bytes(_revised("annual-report.pdf", 3, tmp_path).read_bytes())  # shard 0
    assert collection.index([target], workers=0).ok
    (old,) = [d for d, paths in collection.documents().items() if str(target) in paths]
    target.write_bytes(_revised("annual-report.pdf", 4, tmp_path).read_bytes())  # shard 1
    report = collection.index([target], workers=0)
    assert report.ok and report.indexed == [str(target)]
    (new,) = [d for d, paths in collection.documents().items() if str(target) in paths]
    assert (shard_of(old, 2), shard_of(new, 2)) == (0, 1)
    assert old not in collection.documents()  # no stale copy left in its old shard


def test_delete_finds_the_document_in_its_shard(sharded, home, tmp_path):
    register_example_plugin()
    collection = ShardedCollection("all", 2, data_dir=home, ocr=None)
    target = _revised("invoice.pdf", 2, tmp_path)
    assert collection.index([target], workers=0).ok
    (doc_id,) = [d for d, paths in collection.documents().items() if str(target) in paths]
    assert doc_id in sharded.documents()
    report = collection.delete([str(target), "no-such-doc"])
    assert report.documents == [doc_id] and report.unmatched == ["no-such-doc"]
    assert doc_id not in collection.documents() and doc_id not in sharded.documents()


def test_shard_names_are_valid_collection_names():
    assert shard_name("docs", 1, 4) == "docs.shard-1-of-4"
    assert Retriever(shard_name("docs", 0, 2)).collection == "docs.shard-0-of-2"
    assert [shard_of("abc", 7)] * 3 == [shard_of("abc", 7) for _ in range(3)]

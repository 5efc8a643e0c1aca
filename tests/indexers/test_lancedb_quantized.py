"""Quantized LanceDB collections: stored codes, recall at the default rerank, ``rerank=``,
the manifest's quantization, and a code cache that another writer makes stale."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from retriever import plugin_host
from retriever.errors import UsageError
from retriever.manifest import EncoderIdentity, Manifest
from retriever.types import MultiVector, PageRecord
from structured_pages import structured_corpus

DIM = 64


def manifest(quantization: str = "none") -> Manifest:
    enc = EncoderIdentity("test/structured", "structured", "r1", DIM, "multi")
    return Manifest(encoder=enc, indexer="lancedb", quantization=quantization)


def open_lance(path, manifest=None, **options):
    return plugin_host.get_registry().create("indexer", "lancedb", path=path,
                                             manifest=manifest, **options)


def records(pages) -> list[PageRecord]:
    return [PageRecord(f"doc{i:04d}", f"/d/{i}.pdf", 1, 100, 100,
                       MultiVector(p, np.zeros((len(p), 4), np.float32), check_norm=False))
            for i, p in enumerate(pages)]


def queries_of(vectors) -> list[MultiVector]:
    return [MultiVector(q, np.zeros((len(q), 4), np.float32), check_norm=False)
            for q in vectors]


def assert_same(got, want) -> None:
    """Same pages in the same order, same scores up to float32 summation order."""
    assert [[h.key for h in hits] for hits in got] == [[h.key for h in hits] for hits in want]
    for g, w in zip(got, want):
        np.testing.assert_allclose([h.score for h in g], [h.score for h in w], rtol=1e-5)


@pytest.fixture(scope="module")
def corpus():
    return structured_corpus(300, n_vectors=30, dim=DIM, n_queries=10, seed=5)


@pytest.mark.parametrize("quantization", ["binary", "int8"])
def test_default_rerank_recall_and_full_rerank_equals_exact(tmp_path, corpus, quantization):
    pages, qvecs, targets = corpus
    exact_ix = open_lance(tmp_path / "exact", manifest())
    ix = open_lance(tmp_path / "q", manifest(), quantization=quantization)
    recs = records(pages)
    exact_ix.add(recs)
    ix.add(recs)
    queries = queries_of(qvecs)
    exact = exact_ix.search(queries, 10)
    got = ix.search(queries, 10)  # default rerank: fewer pages than the collection holds
    recall = np.mean([len({h.key for h in e} & {h.key for h in g}) / 10
                      for e, g in zip(exact, got)])
    assert recall >= 0.9
    assert [g[0].key for g in got] == [f"doc{t:04d}:1" for t in targets]
    assert_same(ix.search(queries, 10, rerank=len(pages)), exact)  # all reranked
    small = ix.search(queries, 5, rerank=1)  # rerank never goes below k
    assert all(len(hits) == 5 for hits in small)
    with pytest.raises(UsageError, match="rerank"):
        ix.search(queries, 5, rerank=0)


def test_codes_live_in_the_table_and_records_do_not_carry_them(tmp_path, corpus):
    import lancedb

    pages, _, _ = corpus
    ix = open_lance(tmp_path / "c", manifest(), quantization="binary")
    ix.add(records(pages[:5]))
    table = lancedb.connect(tmp_path / "c").open_table("pages")
    schema = table.schema
    assert str(schema.field("codes").type) == "list<item: fixed_size_list<item: uint8>[8]>"
    assert str(schema.field("centroids").type).startswith("list<item: fixed_size_list<item: "
                                                          "halffloat>")
    stored = Manifest.from_json(schema.metadata[b"retriever.manifest"].decode())
    assert stored.quantization == "binary"
    rec = ix.get(["doc0002:1"])[0]
    np.testing.assert_allclose(rec.embedding.vectors.astype(np.float32), pages[2], atol=1e-3)
    int8 = open_lance(tmp_path / "i", manifest("int8"))  # the manifest can say it too
    int8.add(records(pages[:2]))
    assert int8.quantization == "int8"
    assert "code_scales" in lancedb.connect(tmp_path / "i").open_table("pages").schema.names


def test_quantization_is_fixed_when_the_collection_is_made(tmp_path, corpus):
    pages, _, _ = corpus
    open_lance(tmp_path / "c", manifest(), quantization="int8").add(records(pages[:3]))
    assert open_lance(tmp_path / "c").manifest.quantization == "int8"
    assert open_lance(tmp_path / "c", manifest(), quantization="int8").count() == 3
    with pytest.raises(UsageError, match="quantization 'int8'"):
        open_lance(tmp_path / "c", quantization="binary")
    with pytest.raises(UsageError, match="quantization"):
        open_lance(tmp_path / "new", manifest(), quantization="int4")


def test_other_writers_commits_and_a_stale_cache(tmp_path, corpus):
    pages, qvecs, _ = corpus
    recs = records(pages[:60])
    reader = open_lance(tmp_path / "c", manifest(), quantization="binary", rerank=8)
    writer = open_lance(tmp_path / "c")
    oracle = open_lance(tmp_path / "o", manifest())
    writer.add(recs[:40])
    oracle.add(recs[:40])
    queries = queries_of(qvecs[:3])
    assert_same(reader.search(queries, 5, rerank=60), oracle.search(queries, 5))
    writer.add(recs[40:])  # the reader's code cache is now one version behind
    oracle.add(recs[40:])
    assert_same(reader.search(queries, 5, rerank=60), oracle.search(queries, 5))
    # a commit landing mid-search: the cache claims the current version but its row ids
    # point at pages that are gone, so fetching their vectors must notice and reload
    searcher = reader._code_searcher()
    stale = searcher.cache(reader._table)
    gone = [r.doc_id for r in recs[:30]]
    writer.delete(gone)
    oracle.delete(gone)
    searcher._cache = replace(stale, version=reader.version)
    assert_same(reader.search(queries, 5, rerank=60), oracle.search(queries, 5))


def _cache_by_key(cache):
    """key -> (codes rows, centroid rows) of one code cache, to compare two caches."""
    index, out = cache.index, {}
    for i, key in enumerate(cache.keys.tolist()):
        rows = slice(index.offsets[i], index.offsets[i + 1])
        cents = slice(index.centroid_offsets[i], index.centroid_offsets[i + 1])
        out[key] = (index.codes.bits[rows].copy(), index.centroid_vectors()[cents].copy())
    return out


def _reader_and_writer(tmp_path, first_records):
    """A binary collection with ``first_records``: a reader, another writer on it, and the
    reader's code searcher."""
    reader = open_lance(tmp_path / "c", manifest(), quantization="binary")
    writer = open_lance(tmp_path / "c")
    writer.add(first_records)
    return reader, writer, reader._code_searcher()


def test_a_commit_updates_the_code_cache_by_what_changed(tmp_path, corpus, monkeypatch):
    from indexers.lancedb import codes as code_io

    pytest.importorskip("faiss")
    pages, qvecs, _ = corpus
    recs = records(pages[:200])
    reader, writer, searcher = _reader_and_writer(tmp_path, recs[:150])
    first = searcher.cache(reader._table)
    first.index.centroid_ivf()  # a built coarse stage must be carried through commits
    full_loads = []
    real_load = code_io.load_code_cache
    monkeypatch.setattr(code_io, "load_code_cache",
                        lambda *a, **k: full_loads.append(1) or real_load(*a, **k))
    writer.add(recs[150:170])  # new pages
    writer.delete([r.doc_id for r in recs[10:20]])  # pages gone
    changed = [replace(r, width=101) for r in recs[30:35]]
    writer.add(changed)  # replaced pages: same keys, new rows
    refreshed = searcher.cache(reader._table)
    assert not full_loads  # followed by what changed, nothing reloaded
    assert refreshed.version == int(reader._table.version)
    fresh = real_load(reader._table, refreshed.version, "binary", DIM)
    got, want = _cache_by_key(refreshed), _cache_by_key(fresh)
    assert got.keys() == want.keys()
    for key, (bits, cents) in want.items():
        np.testing.assert_array_equal(got[key][0], bits)
        np.testing.assert_array_equal(got[key][1], cents)
    # the carried IVF maps every centroid to its page in the new numbering
    ivf = refreshed.index._ivf
    assert ivf is not None and ivf.n_pages == refreshed.keys.size
    queries = [np.asarray(q, np.float32) for q in qvecs[:3]]
    found = ivf.candidates(queries, 10, token_k=ivf.index.ntotal, nprobe=ivf.index.nlist)
    from retriever.search.scoring import maxsim_scores_many
    from retriever.search.twostage import best_pages

    exact = maxsim_scores_many(queries, refreshed.index.centroid_vectors(),
                               refreshed.index.centroid_offsets)
    for row, pages_found in zip(exact, found):
        np.testing.assert_allclose(row[pages_found], row[best_pages(row, 10)], rtol=1e-5)
    # and searches through the refreshed cache equal an exact collection's
    oracle = open_lance(tmp_path / "o", manifest())
    oracle.add([r for r in recs[:170] if not 10 <= int(r.doc_id[3:]) < 20
                and not 30 <= int(r.doc_id[3:]) < 35] + changed)
    mvs = queries_of(qvecs[:3])
    assert_same(reader.search(mvs, 5, rerank=200), oracle.search(mvs, 5))


def test_an_append_only_commit_is_followed_without_scanning_every_key(tmp_path, corpus,
                                                                      monkeypatch):
    from indexers.lancedb import codes as code_io

    pages, qvecs, _ = corpus
    recs = records(pages[:80])
    reader, writer, searcher = _reader_and_writer(tmp_path, recs[:60])
    searcher.cache(reader._table)
    scans = []
    real_appended = code_io._appended_since
    monkeypatch.setattr(code_io, "_appended_since",
                        lambda *a, **k: scans.append(r := real_appended(*a, **k)) or r)
    writer.add(recs[60:70])  # only new pages: the row-id filter finds them
    refreshed = searcher.cache(reader._table)
    assert scans[-1] is not None and scans[-1][1].size == 10
    fresh = code_io.load_code_cache(reader._table, refreshed.version, "binary", DIM)
    got, want = _cache_by_key(refreshed), _cache_by_key(fresh)
    assert got.keys() == want.keys()
    for key, (bits, cents) in want.items():
        np.testing.assert_array_equal(got[key][0], bits)
        np.testing.assert_array_equal(got[key][1], cents)
    writer.delete([recs[0].doc_id])  # a deletion: not an append, the key scan decides
    writer.add(recs[70:72])
    after = searcher.cache(reader._table)
    assert scans[-1] is None
    assert sorted(after.keys.tolist()) == sorted(
        code_io.load_code_cache(reader._table, after.version, "binary", DIM).keys.tolist())
    oracle = open_lance(tmp_path / "o", manifest())
    oracle.add(recs[1:72])
    mvs = queries_of(qvecs[:3])
    assert_same(reader.search(mvs, 5, rerank=80), oracle.search(mvs, 5))


def test_device_search_is_for_collections_without_codes(tmp_path, corpus):
    pytest.importorskip("torch")
    pages, qvecs, _ = corpus
    ix = open_lance(tmp_path / "q", manifest(), quantization="binary")
    ix.add(records(pages[:20]))
    with pytest.raises(UsageError, match="device has no meaning"):
        ix.search(queries_of(qvecs[:1]), 5, device="cpu")


def test_device_search_follows_a_new_table_version(tmp_path, corpus):
    pytest.importorskip("torch")
    pages, qvecs, _ = corpus
    ix = open_lance(tmp_path / "c", manifest())
    reader = open_lance(tmp_path / "c", device="cpu")
    ix.add(records(pages[:150]))
    assert_same(reader.search(queries_of(qvecs), 10), ix.search(queries_of(qvecs), 10))
    ix.add(records(pages)[150:])  # a new version: the next search uploads it
    ix.delete(["doc0003"])
    assert_same(reader.search(queries_of(qvecs), 10), ix.search(queries_of(qvecs), 10))
    assert all("doc0003:1" not in {h.key for h in hits}
               for hits in reader.search(queries_of(qvecs), 300))

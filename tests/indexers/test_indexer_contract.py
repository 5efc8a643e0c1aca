"""One contract for every built-in indexer, created through the plugin registry.

Search is checked against an independent float64 brute-force loop on random ragged pages.
LanceDB-only behaviour (one-commit writes, the manifest in the table metadata, other
writers' commits becoming visible, the native multivector search) is tested at the end.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retriever import plugin_host
from retriever.errors import CollectionNotFoundError, ManifestMismatchError, RetrieverError
from retriever.manifest import EncoderIdentity, Manifest
from retriever.protocols import Indexer
from retriever.types import MultiVector, PageRecord, Region

DIM = 16
ENCODER = EncoderIdentity(name="test/random", model_id="random", revision="r1", dim=DIM,
                          kind="multi")
# name used in the registry, options for the factory
BACKENDS = {
    "lancedb": ("lancedb", {}),
    "lancedb-f32": ("lancedb", {"dtype": "float32"}),
    # two-stage search on codes; the default rerank covers every page of the contract's
    # corpora, so rankings must equal the oracle's exactly
    "lancedb-binary": ("lancedb", {"quantization": "binary"}),
    "lancedb-int8": ("lancedb", {"quantization": "int8"}),
    "memory": ("memory", {}),
    # exact search with the pages held on a torch device (the CPU one here: the code a
    # GPU runs, in float32)
    "lancedb-device": ("lancedb", {"device": "cpu"}),
    # FAISS, multi-vector: "flat" is exact MaxSim over every page (no token index)
    "faiss": ("faiss", {"index_type": "flat"}),
    "faiss-device": ("faiss", {"index_type": "flat", "device": "cpu"}),
    # token IVF candidates at the default budget: the contract's data fits in it
    "faiss-ivf": ("faiss", {"index_type": "ivf"}),
    # stage 1 really runs (3 candidates < pages); token_k covers every stored vector, so
    # the candidates are the true best pages and the ranking must still equal the oracle
    "faiss-ivf-c3": ("faiss", {"index_type": "ivf", "candidates": 3, "token_k": 1024}),
    "faiss-hnsw-c3": ("faiss", {"index_type": "hnsw", "candidates": 3, "token_k": 1024}),
}


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> str:
    return request.param


def open_indexer(backend: str, path: Path, manifest: Manifest | None = None) -> Indexer:
    name, options = BACKENDS[backend]
    registry = plugin_host.get_registry()
    return registry.create("indexer", name, path=path, manifest=manifest, **options)


def manifest_for(backend: str, encoder: EncoderIdentity = ENCODER) -> Manifest:
    name, options = BACKENDS[backend]
    # a quantized collection records its format in the manifest it stores
    return Manifest(encoder=encoder, indexer=name,
                    quantization=options.get("quantization", "none"))


def unit(rng: np.random.Generator, n: int, d: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, d))
    # float16 values: every backend then stores exactly what the oracle scores
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    lo = rng.uniform(0, 0.5, size=(n, 2))
    return np.concatenate([lo, lo + rng.uniform(0, 0.5, size=(n, 2))], axis=1).astype(np.float32)


def make_record(rng, doc: str, page: int, n: int, source: str | None = None) -> PageRecord:
    line = Region((0.1, 0.1, 0.5, 0.15), f"line {page}", level="line", source="ocr",
                  confidence=0.9)
    para = Region((0.1, 0.1, 0.9, 0.3), f"{doc} page {page} text", source="ocr",
                  confidence=0.8, children=(line,))
    return PageRecord(
        doc_id=doc, source=source or f"/data/{doc}.pdf", page_number=page, width=800 + page,
        height=1000 + page, embedding=MultiVector(unit(rng, n), random_boxes(rng, n)),
        regions=[para], has_text_layer=page % 2 == 0,
    )


def make_corpus(seed: int = 0, n_docs: int = 6) -> list[PageRecord]:
    rng = np.random.default_rng(seed)
    records = []
    for d in range(n_docs):
        for p in range(1, int(rng.integers(1, 5)) + 1):
            records.append(make_record(rng, f"doc{d}", p, int(rng.integers(0, 9))))
    records[1] = replace(records[1], embedding=MultiVector.empty(DIM))  # one page, no vectors
    return records


def brute_force(records: list[PageRecord], query: np.ndarray, k: int) -> list[tuple[str, float]]:
    q = query.astype(np.float64)
    scored = []
    for r in records:
        v = r.embedding.vectors.astype(np.float64)
        if len(v):
            scored.append((r.key, sum(max(float(qi @ vj) for vj in v) for qi in q)))
    scored.sort(key=lambda s: (-s[1], s[0]))
    return scored[:k]


def assert_same_ranking(got, want) -> None:
    assert [h.key for h in got] == [key for key, _ in want]
    np.testing.assert_allclose([h.score for h in got], [s for _, s in want], rtol=1e-5, atol=1e-5)


# -- the contract -------------------------------------------------------------------------


def test_add_count_documents(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    assert isinstance(ix, Indexer)
    assert ix.count() == 0 and ix.documents() == {}
    records = make_corpus()
    ix.add(records)
    assert ix.count() == len(records)
    assert ix.documents() == {r.doc_id: r.source for r in records}
    ix.add([])  # a no-op
    assert ix.count() == len(records)


def test_search_equals_brute_force(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    records = make_corpus(seed=1, n_docs=12)
    ix.add(records[:10])
    ix.add(records[10:])
    rng = np.random.default_rng(7)
    queries = [MultiVector(unit(rng, n), np.zeros((n, 4), np.float32)) for n in (1, 3, 6, 3)]
    for k in (1, 5, len(records) + 10):
        results = ix.search(queries, k)
        assert len(results) == len(queries)
        for query, got in zip(queries, results):
            assert_same_ranking(got, brute_force(records, query.vectors, k))
    assert ix.search([], 3) == []


def test_search_empty_collection_and_bad_query(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    rng = np.random.default_rng(0)
    q = MultiVector(unit(rng, 2), np.zeros((2, 4), np.float32))
    assert ix.search([q], 3) == [[]]
    with pytest.raises(ManifestMismatchError, match="dim"):
        ix.search([MultiVector(unit(rng, 2, DIM + 1), np.zeros((2, 4), np.float32))], 3)


def test_get_roundtrip_in_given_order(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    records = make_corpus(seed=2)
    ix.add(records)
    by_key = {r.key: r for r in records}
    keys = [records[3].key, records[0].key, records[1].key, records[3].key]
    got = ix.get(keys)
    assert [r.key for r in got] == keys
    for rec in got:
        want = by_key[rec.key]
        assert (rec.doc_id, rec.source, rec.page_number, rec.width, rec.height,
                rec.has_text_layer) == (want.doc_id, want.source, want.page_number,
                                        want.width, want.height, want.has_text_layer)
        np.testing.assert_array_equal(rec.embedding.vectors.astype(np.float32),
                                      want.embedding.vectors.astype(np.float32))
        np.testing.assert_array_equal(rec.embedding.boxes, want.embedding.boxes)
        assert rec.embedding.vectors.shape == (want.embedding.n, DIM)
        assert rec.regions == want.regions
    assert ix.get([]) == []
    with pytest.raises(RetrieverError, match="no page"):
        ix.get([records[0].key, "nope:1"])


def test_delete(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    records = make_corpus(seed=3)
    ix.add(records)
    doc = records[0].doc_id
    n_doc = sum(r.doc_id == doc for r in records)
    assert ix.delete([doc, "unknown-doc"]) == n_doc
    assert ix.delete([doc]) == 0
    assert ix.delete([]) == 0
    remaining = [r for r in records if r.doc_id != doc]
    assert ix.count() == len(remaining)
    assert doc not in ix.documents()
    rng = np.random.default_rng(1)
    q = MultiVector(unit(rng, 4), np.zeros((4, 4), np.float32))
    assert_same_ranking(ix.search([q], 50)[0], brute_force(remaining, q.vectors, 50))


def test_update_by_delete_and_readd(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    records = make_corpus(seed=4)
    ix.add(records)
    rng = np.random.default_rng(9)
    doc = records[-1].doc_id
    new_pages = [make_record(rng, doc, p, 5, source="/data/moved.pdf") for p in (1, 2)]
    ix.delete([doc])
    ix.add(new_pages)
    current = [r for r in records if r.doc_id != doc] + new_pages
    assert ix.count() == len(current)
    assert ix.documents()[doc] == "/data/moved.pdf"
    q = MultiVector(unit(rng, 3), np.zeros((3, 4), np.float32))
    assert_same_ranking(ix.search([q], 50)[0], brute_force(current, q.vectors, 50))


def test_add_replaces_same_page(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    rng = np.random.default_rng(5)
    first = make_record(rng, "d", 1, 3)
    again = make_record(rng, "d", 1, 6, source="/data/other.pdf")
    ix.add([first, make_record(rng, "d", 2, 2)])
    ix.add([again])  # re-indexing a page replaces it (resumable indexing relies on this)
    assert ix.count() == 2
    assert ix.get(["d:1"])[0].embedding.n == 6
    with pytest.raises(RetrieverError, match="twice"):
        ix.add([first, first])


def test_persist_and_reopen(backend, tmp_path):
    path = tmp_path / "c"
    manifest = manifest_for(backend)
    ix = open_indexer(backend, path, manifest)
    records = make_corpus(seed=6)
    ix.add(records)
    rng = np.random.default_rng(2)
    q = MultiVector(unit(rng, 3), np.zeros((3, 4), np.float32))
    before = ix.search([q], 5)
    ix.close()
    again = open_indexer(backend, path)  # no manifest: the collection knows how it was built
    assert again.manifest == manifest
    assert again.count() == len(records)
    assert again.search([q], 5) == before
    # reopening with the same encoder passes the check
    assert open_indexer(backend, path, manifest).count() == len(records)


def test_manifest_mismatch_is_a_clear_error(backend, tmp_path):
    path = tmp_path / "mine"
    open_indexer(backend, path, manifest_for(backend)).add(make_corpus(seed=7))
    other = EncoderIdentity(name="test/other", model_id="other-model", revision="r9",
                            dim=DIM * 2, kind="multi")
    with pytest.raises(ManifestMismatchError) as err:
        open_indexer(backend, path, manifest_for(backend, other))
    text = str(err.value)
    assert "'mine'" in text and "test/random" in text and "test/other" in text
    assert err.value.hint and "test/random" in err.value.hint


def test_missing_collection(backend, tmp_path):
    path = tmp_path / "absent"
    with pytest.raises(CollectionNotFoundError, match="absent"):
        open_indexer(backend, path)
    assert not path.exists()  # opening must not create it


def test_wrong_dim_in_a_batch_adds_nothing(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    rng = np.random.default_rng(8)
    ix.add([make_record(rng, "a", 1, 3)])
    good = make_record(rng, "b", 1, 3)
    bad = replace(make_record(rng, "c", 1, 3),
                  embedding=MultiVector(unit(rng, 3, DIM + 4), random_boxes(rng, 3)))
    with pytest.raises(ManifestMismatchError, match="dim"):
        ix.add([good, bad])
    assert ix.count() == 1 and set(ix.documents()) == {"a"}


def test_quotes_in_ids(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    rng = np.random.default_rng(10)
    rec = make_record(rng, "it's", 1, 2)
    ix.add([rec, make_record(rng, "plain", 1, 2)])
    assert ix.get(["it's:1"])[0].doc_id == "it's"
    assert ix.delete(["it's"]) == 1 and ix.count() == 1


# -- LanceDB only ---------------------------------------------------------------------------


def lance(tmp_path: Path, **options):
    registry = plugin_host.get_registry()
    return registry.create("indexer", "lancedb", path=tmp_path / "c",
                           manifest=manifest_for("lancedb"), **options)


def test_lancedb_add_failing_midway_commits_nothing(tmp_path, monkeypatch):
    from indexers.lancedb import indexer as lance_indexer

    ix = lance(tmp_path)
    ix.add(make_corpus(seed=11, n_docs=2))
    count, version = ix.count(), ix.version
    monkeypatch.setattr(lance_indexer, "_WRITE_BATCH_PAGES", 2)  # several batches per add
    calls = []
    real = ix._to_batch

    def flaky(records, schema):
        calls.append(len(records))
        if len(calls) == 3:
            raise OSError("disk vanished")
        return real(records, schema)

    monkeypatch.setattr(ix, "_to_batch", flaky)
    with pytest.raises(OSError, match="disk vanished"):
        ix.add(make_corpus(seed=12, n_docs=5))
    assert len(calls) == 3  # two batches had already been handed to LanceDB
    assert ix.count() == count and ix.version == version


def test_lancedb_manifest_lives_in_table_metadata(tmp_path):
    import lancedb

    ix = lance(tmp_path)
    ix.add(make_corpus(seed=13))
    table = lancedb.connect(tmp_path / "c").open_table("pages")
    raw = table.schema.metadata[b"retriever.manifest"]
    assert Manifest.from_json(raw.decode()) == manifest_for("lancedb")
    assert str(table.schema.field("vectors").type) == (
        f"list<item: fixed_size_list<item: halffloat>[{DIM}]>")


def test_lancedb_sees_commits_of_other_writers(tmp_path):
    reader = lance(tmp_path)
    writer = plugin_host.get_registry().create("indexer", "lancedb", path=tmp_path / "c",
                                               manifest=None)
    records = make_corpus(seed=14)
    writer.add(records[:5])
    rng = np.random.default_rng(3)
    q = MultiVector(unit(rng, 3), np.zeros((3, 4), np.float32))
    assert_same_ranking(reader.search([q], 50)[0], brute_force(records[:5], q.vectors, 50))
    writer.add(records[5:])  # the reader's cache is now stale
    assert_same_ranking(reader.search([q], 50)[0], brute_force(records, q.vectors, 50))
    writer.delete([records[0].doc_id])
    rest = [r for r in records if r.doc_id != records[0].doc_id]
    assert_same_ranking(reader.search([q], 50)[0], brute_force(rest, q.vectors, 50))


def test_lancedb_native_search_agrees(tmp_path):
    ix = lance(tmp_path, dtype="float32")
    records = make_corpus(seed=15, n_docs=10)
    ix.add(records)
    rng = np.random.default_rng(4)
    for n in (1, 4):
        q = MultiVector(unit(rng, n), np.zeros((n, 4), np.float32))
        native = ix.search_native([q], 5)[0]
        ours = ix.search([q], 5)[0]
        assert [h.key for h in native] == [h.key for h in ours]
        # LanceDB's cosine kernel is a little less exact than float32 (seen: 1.5e-4)
        np.testing.assert_allclose([h.score for h in native], [h.score for h in ours],
                                   atol=1e-3)


def test_lancedb_cache_dtype_float16_and_bad_options(tmp_path):
    from retriever.errors import UsageError

    ix = lance(tmp_path, cache_dtype="float16", threads=1)
    records = make_corpus(seed=16)
    ix.add(records)
    rng = np.random.default_rng(5)
    q = MultiVector(unit(rng, 3), np.zeros((3, 4), np.float32))
    assert_same_ranking(ix.search([q], 50)[0], brute_force(records, q.vectors, 50))
    with pytest.raises(UsageError, match="indexer 'lancedb' has no option colour"):
        lance(tmp_path, colour="blue")
    with pytest.raises(RetrieverError, match="dtype"):
        plugin_host.get_registry().create("indexer", "lancedb", path=tmp_path / "new",
                                          manifest=manifest_for("lancedb"), dtype="int4")
    assert not (tmp_path / "new").exists()


def test_lancedb_device_search_keeps_no_host_copy_and_follows_commits(tmp_path):
    """With ``device``, pages go from the table version's dataset to the device a chunk at
    a time: the host cache of exact search is never built, and a commit is seen."""
    ix = lance(tmp_path, device="cpu")
    records = make_corpus(seed=17)
    ix.add(records[:-3])
    rng = np.random.default_rng(6)
    q = MultiVector(unit(rng, 3), np.zeros((3, 4), np.float32))
    assert_same_ranking(ix.search([q], 50)[0], brute_force(records[:-3], q.vectors, 50))
    ix.add(records[-3:])
    assert_same_ranking(ix.search([q], 50)[0], brute_force(records, q.vectors, 50))
    assert ix._exact._held is None  # noqa: SLF001 - what the option promises to save


# -- replace: one commit for a changed document; every path a document is recorded at ---------


def test_replace_deletes_adds_and_relinks_in_one_call(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    rng = np.random.default_rng(20)
    old = [make_record(rng, "old", p, 3, source="/data/v.pdf") for p in (1, 2, 3)]
    keep = make_record(rng, "keep", 1, 2)
    ix.add([*old, keep])
    new = [make_record(rng, "new", p, 4, source="/data/v.pdf") for p in (1, 2)]
    moved = ["/data/moved/keep.pdf", "/data/copy/keep.pdf"]
    assert ix.replace(new, delete=["old"], paths={"keep": moved}) == 3
    assert ix.count() == 3
    assert ix.paths() == {"new": ["/data/v.pdf"], "keep": moved}
    assert ix.documents() == {"new": "/data/v.pdf", "keep": moved[0]}
    got = ix.get(["keep:1"])[0]
    assert got.source == moved[0] and list(got.paths) == moved
    np.testing.assert_array_equal(got.embedding.vectors.astype(np.float32),
                                  keep.embedding.vectors.astype(np.float32))
    q = MultiVector(unit(rng, 3), np.zeros((3, 4), np.float32))
    assert_same_ranking(ix.search([q], 50)[0], brute_force([*new, keep], q.vectors, 50))
    ix.close()
    again = open_indexer(backend, tmp_path / "c")
    assert again.paths() == {"new": ["/data/v.pdf"], "keep": moved}


def test_replace_of_a_document_by_itself_drops_its_extra_pages(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    rng = np.random.default_rng(21)
    ix.add([make_record(rng, "d", p, 3) for p in (1, 2, 3)] + [make_record(rng, "e", 1, 2)])
    again = make_record(rng, "d", 1, 5)
    assert ix.replace([again], delete=["d"]) == 2  # pages 2 and 3 went, page 1 was rewritten
    assert sorted(r.key for r in ix.get(["d:1", "e:1"])) == ["d:1", "e:1"]
    assert ix.count() == 2 and ix.get(["d:1"])[0].embedding.n == 5
    assert ix.replace([], delete=["e"]) == 1 and set(ix.documents()) == {"d"}
    assert ix.replace([]) == 0


def test_replace_refuses_bad_arguments_and_changes_nothing(backend, tmp_path):
    from retriever.errors import UsageError

    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    rng = np.random.default_rng(22)
    ix.add([make_record(rng, "a", 1, 2), make_record(rng, "b", 1, 2)])
    before = ix.paths()
    with pytest.raises(UsageError, match="deleted"):
        ix.replace([], delete=["a"], paths={"a": ["/x.pdf"]})
    with pytest.raises(UsageError, match="no paths"):
        ix.replace([], paths={"a": []})
    with pytest.raises(RetrieverError, match="no document"):
        ix.replace([make_record(rng, "c", 1, 2)], paths={"nope": ["/x.pdf"]})
    assert ix.paths() == before and ix.count() == 2


def test_paths_default_to_the_source(backend, tmp_path):
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    records = make_corpus(seed=23)
    ix.add(records)
    assert ix.paths() == {r.doc_id: [r.source] for r in records}
    assert ix.get([records[0].key])[0].paths in ((), (records[0].source,))


def test_file_names_that_are_not_utf8_are_stored_losslessly(backend, tmp_path):
    import os

    odd = os.fsdecode(b"/data/\xff\xfe.pdf")  # what os.listdir gives for such a name
    latin = os.fsdecode(b"/data/caf\xe9 \xe0 la carte.pdf")
    ix = open_indexer(backend, tmp_path / "c", manifest_for(backend))
    rng = np.random.default_rng(24)
    ix.add([make_record(rng, "odd", 1, 3, source=odd), make_record(rng, "odd", 2, 1,
                                                                   source=odd)])
    assert ix.documents() == {"odd": odd} and ix.get(["odd:2"])[0].source == odd
    ix.replace([], paths={"odd": [latin, odd]})
    ix.close()
    again = open_indexer(backend, tmp_path / "c")
    assert again.paths() == {"odd": [latin, odd]}
    assert [os.fsencode(p) for p in again.get(["odd:1"])[0].paths] == [
        b"/data/caf\xe9 \xe0 la carte.pdf", b"/data/\xff\xfe.pdf"]


def _replace_case(ix, rng):
    """A stored old version and a bystander; -> (new pages, the replace's arguments)."""
    ix.add([make_record(rng, "old", p, 3, source="/data/v.pdf") for p in (1, 2)]
           + [make_record(rng, "keep", 1, 2)])
    new = [make_record(rng, "new", p, 4, source="/data/v.pdf") for p in (1, 2, 3)]
    return new, {"delete": ["old"], "paths": {"keep": ["/data/elsewhere.pdf"]}}


def test_lancedb_replace_is_one_commit_and_failing_midway_commits_nothing(tmp_path,
                                                                           monkeypatch):
    from indexers.lancedb import indexer as lance_indexer

    ix = lance(tmp_path)
    new, change = _replace_case(ix, np.random.default_rng(25))
    before, version = ix.paths(), ix.version
    monkeypatch.setattr(lance_indexer, "_WRITE_BATCH_PAGES", 1)  # a batch per page
    real, calls = ix._to_batch, []

    def flaky(records, schema, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first new page is already with LanceDB
            raise OSError("disk vanished")
        return real(records, schema, *args, **kwargs)

    monkeypatch.setattr(ix, "_to_batch", flaky)
    with pytest.raises(OSError, match="disk vanished"):
        ix.replace(new, **change)
    assert ix.version == version and ix.paths() == before and ix.count() == 3
    monkeypatch.setattr(ix, "_to_batch", real)
    ix.replace(new, **change)
    assert ix.version == version + 1  # delete, add and relink: one commit
    assert ix.paths() == {"new": ["/data/v.pdf"], "keep": ["/data/elsewhere.pdf"]}


@pytest.mark.parametrize("fail_at", range(1, 12))
def test_faiss_replace_failing_at_any_write_keeps_the_old_version(tmp_path, monkeypatch,
                                                                   fail_at):
    from indexers.faiss import files

    ix = open_indexer("faiss", tmp_path / "c", manifest_for("faiss"))
    new, change = _replace_case(ix, np.random.default_rng(26))
    before, generation = ix.paths(), ix.stats()["generation"]
    real, calls = files.atomic_write, []

    def torn_write(path, write):
        calls.append(path)
        if len(calls) == fail_at:
            raise KeyboardInterrupt  # Ctrl-C (or a full disk) halfway through the commit
        return real(path, write)

    monkeypatch.setattr(files, "atomic_write", torn_write)
    try:
        ix.replace(new, **change)
    except KeyboardInterrupt:
        monkeypatch.setattr(files, "atomic_write", real)
        for reader in (open_indexer("faiss", tmp_path / "c"), ix):
            assert reader.paths() == before and reader.count() == 3
            assert reader.stats()["generation"] == generation
        return
    assert fail_at > len(calls)  # past the commit's last write: it committed, as one
    assert ix.stats()["generation"] == generation + 1
    assert ix.paths() == {"new": ["/data/v.pdf"], "keep": ["/data/elsewhere.pdf"]}

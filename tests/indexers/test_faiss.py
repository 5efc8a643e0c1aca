"""FAISS backend specifics: index types and recall, persistence, deletion and tombstones,
lazily saved indexes, segment merging, and crash atomicity of commits.

The shared contract (search equals the oracle, get/delete/replace, manifests) runs on
"faiss" in test_indexer_contract.py; real faiss everywhere, nothing mocked.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from indexers.faiss import ann, files, search as faiss_search, store
from faiss_helpers import manifest, normalized, open_faiss, page, query
from repo_paths import REPO
from retriever import plugin_host
from retriever.errors import RetrieverError, UsageError
from retriever.types import MultiVector, PageRecord

pytest.importorskip("faiss")


def exact_top(pages: list[PageRecord], q: np.ndarray, k: int) -> list[str]:
    scored = [(float((q.astype(np.float64) @ p.embedding.vectors.astype(np.float64).T)
                     .max(axis=1).sum()), p.key) for p in pages if p.embedding.n]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [key for _, key in scored[:k]]


def snapshot(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.iterdir()) if p.name != files.LOCK_NAME}


# -- single-vector index types ---------------------------------------------------------------

N_SINGLE, D_SINGLE = 3000, 32


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(0)
    x = normalized(rng.standard_normal((N_SINGLE, D_SINGLE)))  # (N, d)
    q = normalized(rng.standard_normal((40, D_SINGLE)))  # (Q, d)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]  # (Q, 10) brute force
    return x, q, truth


@pytest.mark.parametrize("index_type, options, min_recall", [
    ("flat", {}, 0.999),
    ("hnsw", {}, 0.9),  # M=32, efConstruction=64, efSearch=max(64, candidates)
    # unstructured data needs about half the lists probed (see indexers/faiss/ann.py)
    ("ivfpq", {"nprobe": ann.nlist_for(N_SINGLE) // 2}, 0.9),
])
def test_single_vector_recall(tmp_path, gaussian, index_type, options, min_recall):
    x, q, truth = gaussian
    ix = open_faiss(tmp_path / "c", manifest("single", D_SINGLE), index_type=index_type,
                    dtype="float32", **options)
    ix.add([page(f"d{i}", x[i:i + 1]) for i in range(N_SINGLE)])
    assert ix.stats()["index_type"] == index_type
    results = ix.search([query(v[None]) for v in q], 10)
    recalls = []
    for got, want, qv in zip(results, truth, q):
        ids = [int(h.key[1:].split(":")[0]) for h in got]
        recalls.append(len(set(ids) & set(want.tolist())) / 10)
        # stage 2 rescoring is exact, whatever stage 1 was
        np.testing.assert_allclose([h.score for h in got], x[ids] @ qv, atol=1e-5)
    assert np.mean(recalls) >= min_recall, (index_type, np.mean(recalls))


def test_auto_type_by_size():
    assert ann.auto_type("single", 1_000) == "flat"
    assert ann.auto_type("single", 100_000) == "hnsw"
    assert ann.auto_type("single", 5_000_000) == "ivfpq"
    assert ann.auto_type("multi", 100_000) is None  # exact MaxSim, no token index
    assert ann.auto_type("multi", 5_000_000) == "ivfpq"


def test_single_vector_pages_hold_one_vector(tmp_path):
    ix = open_faiss(tmp_path / "c", manifest("single", 8))
    rng = np.random.default_rng(1)
    with pytest.raises(UsageError, match="single-vector"):
        ix.add([page("a", normalized(rng.standard_normal((2, 8))))])
    ix.add([page("a", normalized(rng.standard_normal((1, 8)))), page("b", np.zeros((0, 8)))])
    assert ix.count() == 2 and ix.stats()["index_type"] == "flat"


# -- persistence and deletion --------------------------------------------------------------


@pytest.mark.parametrize("index_type", ["hnsw", "ivfpq", "flat"])
def test_reopen_loads_the_saved_index(tmp_path, monkeypatch, index_type):
    rng = np.random.default_rng(2)
    pages = [page(f"d{i}", normalized(rng.standard_normal((1, 16)))) for i in range(400)]
    ix = open_faiss(tmp_path / "c", manifest("single", 16), index_type=index_type,
                    candidates=20)
    ix.add(pages)
    qs = [query(normalized(rng.standard_normal((1, 16)))) for _ in range(5)]
    before = ix.search(qs, 5)
    ix.close()
    with pytest.raises(UsageError, match="closed"):
        ix.count()

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the saved index should have been loaded, not rebuilt")

    monkeypatch.setattr(ann.TokenIndex, "build", no_rebuild)
    # the index type is stored with the collection; search options are per opening
    again = open_faiss(tmp_path / "c", candidates=20)
    assert again.stats()["index_type"] == index_type
    assert again.search(qs, 5) == before


def test_hnsw_deletes_are_tombstones_until_compaction(tmp_path):
    rng = np.random.default_rng(3)
    pages = [page(f"d{i:03d}", normalized(rng.standard_normal((1, 16)))) for i in range(200)]
    ix = open_faiss(tmp_path / "c", manifest("single", 16), index_type="hnsw", candidates=30)
    ix.add(pages)
    gone = [f"d{i:03d}" for i in range(0, 200, 10)]  # 10%: below the compaction threshold
    assert ix.delete(gone) == len(gone)
    stats = ix.stats()
    assert stats["tombstoned_pages"] == len(gone) and stats["index_vectors"] == 200
    live = [p for p in pages if p.doc_id not in gone]
    for p in pages[:30]:  # a deleted page's own vector must not bring it back
        got = [h.key for h in ix.search([query(p.embedding.vectors)], 5)[0]]
        assert got == exact_top(live, p.embedding.vectors, 5)
    reopened = open_faiss(tmp_path / "c")  # tombstones come back from the saved page table
    assert reopened.stats()["tombstoned_pages"] == len(gone)
    assert reopened.search([query(pages[0].embedding.vectors)], 5) == ix.search(
        [query(pages[0].embedding.vectors)], 5)
    more = [f"d{i:03d}" for i in range(5, 200, 10)] + ["d002"]  # past 20%: rebuilt
    ix.delete(more)
    stats = ix.stats()
    assert stats["tombstoned_pages"] == 0 and stats["index_vectors"] == 159
    ix.delete(["d001"])
    assert ix.stats()["tombstoned_pages"] == 1
    ix.compact()
    stats = ix.stats()
    assert (stats["tombstoned_pages"], stats["index_vectors"], stats["segments"]) == (0, 158, 1)
    live = [p for p in pages if p.doc_id not in set(gone) | set(more) | {"d001"}]
    q = normalized(rng.standard_normal((1, 16)))
    assert [h.key for h in ix.search([query(q)], 5)[0]] == exact_top(live, q, 5)


@pytest.mark.parametrize("index_type", ["flat", "ivf"])
def test_flat_and_ivf_remove_deleted_vectors(tmp_path, index_type):
    rng = np.random.default_rng(4)
    pages = [page(f"d{i}", normalized(rng.standard_normal((3, 16)))) for i in range(100)]
    kind = "single" if index_type == "flat" else "multi"
    pages = [p if kind == "multi" else page(p.doc_id, p.embedding.vectors[:1]) for p in pages]
    ix = open_faiss(tmp_path / "c", manifest(kind, 16), index_type=index_type, candidates=5,
                    token_k=400)
    ix.add(pages)
    ix.delete([f"d{i}" for i in range(50)])
    stats = ix.stats()
    assert stats["tombstoned_pages"] == 0
    assert stats["index_vectors"] == sum(p.embedding.n for p in pages[50:])
    q = pages[3].embedding.vectors  # a deleted page's vectors
    assert [h.key for h in ix.search([query(q)], 3)[0]] == exact_top(pages[50:], q, 3)


def test_index_is_saved_lazily_and_caught_up_on_open(tmp_path):
    rng = np.random.default_rng(5)
    ix = open_faiss(tmp_path / "c", manifest("single", 16), index_type="hnsw", candidates=8)
    ix.add([page(f"d{i}", normalized(rng.standard_normal((1, 16)))) for i in range(100)])
    saved = ix.stats()["saved_index"]
    late = [page(f"late{i}", normalized(rng.standard_normal((1, 16)))) for i in range(5)]
    for p in late:  # 5 changed pages < 10% of 100: the index file is not rewritten
        ix.add([p])
    assert ix.stats()["saved_index"] == saved
    assert not [n for n in os.listdir(tmp_path / "c") if n.startswith("index-")
                and saved.split(".")[0] not in n]
    other = open_faiss(tmp_path / "c")  # loads the older file, adds the 5 pages it lacks
    for p in late:
        assert other.search([query(p.embedding.vectors)], 1)[0][0].key == p.key
    ix.add([page(f"more{i}", normalized(rng.standard_normal((1, 16)))) for i in range(20)])
    assert ix.stats()["saved_index"] != saved


def test_other_writers_commits_are_seen(tmp_path):
    rng = np.random.default_rng(6)
    reader = open_faiss(tmp_path / "c", manifest("multi", 16), index_type="ivf",
                        candidates=4, token_k=10_000)
    writer = open_faiss(tmp_path / "c")
    pages = [page(f"d{i}", normalized(rng.standard_normal((6, 16)))) for i in range(40)]
    writer.add(pages[:20])
    q = normalized(rng.standard_normal((3, 16)))
    assert [h.key for h in reader.search([query(q)], 4)[0]] == exact_top(pages[:20], q, 4)
    writer.add(pages[20:])
    writer.delete(["d1", "d25"])
    live = [p for p in pages if p.doc_id not in ("d1", "d25")]
    assert reader.count() == 38
    assert [h.key for h in reader.search([query(q)], 4)[0]] == exact_top(live, q, 4)


def test_segments_are_merged_and_pages_survive(tmp_path):
    rng = np.random.default_rng(7)
    ix = open_faiss(tmp_path / "c", manifest("multi", 8))
    pages = [page(f"d{i}", normalized(rng.standard_normal((2, 8)))) for i in range(30)]
    for p in pages:
        ix.add([p])
    ix.delete(["d3", "d4"])
    stats = ix.stats()
    assert stats["generation"] == 31 and stats["pages"] == 28
    assert stats["segments"] <= 12
    seg_files = [n for n in os.listdir(tmp_path / "c") if n.startswith("seg-")]
    assert len(seg_files) == 4 * stats["segments"]  # merged-away segments were collected
    for want, got in zip(pages[5:], ix.get([p.key for p in pages[5:]])):
        np.testing.assert_array_equal(got.embedding.vectors.astype(np.float32),
                                      want.embedding.vectors.astype(np.float16))
        assert got.regions == want.regions


def test_bad_options_are_usage_errors(tmp_path):
    man = manifest("multi", 8)
    for options in ({"colour": "blue"}, {"index_type": "lsh"}, {"candidates": 0},
                    {"nprobe": -1}, {"dtype": "int4"}, {"quantization": "int4"},
                    {"rerank": 1.5}):
        with pytest.raises(UsageError):
            open_faiss(tmp_path / "new", man, **options)
    assert not (tmp_path / "new").exists()
    open_faiss(tmp_path / "new", man, quantization="binary")
    with pytest.raises(UsageError, match="quantization"):  # fixed when the collection is made
        open_faiss(tmp_path / "new", man, quantization="int8")
    assert open_faiss(tmp_path / "new").manifest.quantization == "binary"


# -- multi-vector candidate generation ------------------------------------------------------


def structured_pages(rng: np.random.Generator, n: int) -> tuple[list[PageRecord], list]:
    """Pages around shared topics with their own content; 20 queries from target pages."""
    topics = normalized(rng.standard_normal((12, 32)))
    pages = []
    for i in range(n):
        centre = topics[i % 12] + 0.6 * normalized(rng.standard_normal((1, 32)))[0]
        pages.append(page(f"d{i:03d}", normalized(centre + 0.5 * rng.standard_normal((10, 32)))))
    queries = []
    for t in range(0, n, n // 20):
        target = pages[t].embedding.vectors[:4]
        queries.append(normalized(target + 0.3 * rng.standard_normal(target.shape)))
    return pages, queries


@pytest.mark.parametrize("index_type", ["ivf", "hnsw"])
def test_multi_vector_candidates_find_the_target_page(tmp_path, monkeypatch, index_type):
    pages, queries = structured_pages(np.random.default_rng(8), 300)
    # stage 2 sees about a tenth of the pages; IVF probes its default quarter of the lists
    ix = open_faiss(tmp_path / "c", manifest("multi", 32), index_type=index_type,
                    candidates=32)
    ix.add(pages)
    calls = []
    real = faiss_search.candidate_positions
    monkeypatch.setattr(faiss_search, "candidate_positions",
                        lambda *a, **kw: calls.append(1) or real(*a, **kw))
    hits, overlap = 0, []
    for q in queries:
        got = [h.key for h in ix.search([query(q)], 5)[0]]
        want = exact_top(pages, q, 5)
        hits += got[0] == want[0]
        overlap.append(len(set(got) & set(want)) / 5)
    assert calls, "stage 1 should have run"
    assert hits == 20 and np.mean(overlap) >= 0.9


@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_quantized_collections_shortlist_on_codes(tmp_path, monkeypatch, quantization):
    """retriever.search.twostage: code MaxSim shortlists ``rerank`` pages, exact MaxSim ranks them."""
    from indexers.faiss import codes

    calls = []
    real = codes.code_search
    monkeypatch.setattr(codes, "code_search", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    pages, queries = structured_pages(np.random.default_rng(11), 300)
    # the default rerank depth per format (binary 128, int8 64 pages) is below 300 pages
    ix = open_faiss(tmp_path / "c", manifest("multi", 32), quantization=quantization)
    ix.add(pages)
    assert ix.manifest.quantization == quantization and ix.stats()["index_type"] is None
    overlap = []
    for q in queries:
        got, want = ix.search([query(q)], 5)[0], exact_top(pages, q, 5)
        assert got[0].key == want[0]
        overlap.append(len({h.key for h in got} & set(want)) / 5)
    assert calls and np.mean(overlap) >= 0.9
    exact = open_faiss(tmp_path / "c", rerank=500)  # every page reaches stage 2: exact
    for q in queries[:3]:
        assert [h.key for h in exact.search([query(q)], 10)[0]] == exact_top(pages, q, 10)
    assert ix.search([query(np.zeros((0, 32), np.float32))], 2)[0][0].score == 0


@pytest.mark.parametrize("quantization, n", [("int8", 300), ("binary", 300),
                                             ("binary", 700)])  # 700: with page centroids
def test_a_commit_carries_the_codes_instead_of_rebuilding(tmp_path, monkeypatch,
                                                          quantization, n):
    """After a commit the next search encodes only the added pages' codes (the previous
    generation's codes move by what changed), and ranks as a fresh build of them does."""
    from retriever.search.twostage import CodeIndex

    pages, queries = structured_pages(np.random.default_rng(5), n)
    ix = open_faiss(tmp_path / "c", manifest("multi", 32), quantization=quantization)
    ix.add(pages[:n - 40])
    ix.search([query(queries[0])], 5)  # builds this generation's codes
    built: list[int] = []
    real = CodeIndex.build.__func__
    monkeypatch.setattr(CodeIndex, "build", classmethod(
        lambda cls, vectors, *a, **kw: built.append(len(vectors)) or real(cls, vectors, *a,
                                                                          **kw)))
    ix.add(pages[n - 40:])  # 40 new pages
    ix.delete(["d003", "d100"])
    got = [ix.search([query(q)], 10)[0] for q in queries]
    assert built == [sum(p.embedding.n for p in pages[n - 40:])]  # the added pages only
    fresh = open_faiss(tmp_path / "c")  # builds its codes from every stored page
    want = [fresh.search([query(q)], 10)[0] for q in queries]
    assert [[(h.key, round(h.score, 5)) for h in hits] for hits in got] == [
        [(h.key, round(h.score, 5)) for h in hits] for hits in want]
    assert not {"d003:1", "d100:1"} & {h.key for hits in got for h in hits}


def test_exact_search_carries_its_matrix_across_commits(tmp_path, monkeypatch):
    """Exact search's float32 matrix follows a commit: an append converts only the added
    pages (in place), a delete only drops rows; ranking is a fresh build's."""
    from indexers.faiss.state import LiveView

    pages, queries = structured_pages(np.random.default_rng(9), 200)
    ix = open_faiss(tmp_path / "c", manifest("multi", 32), index_type="flat")
    ix.add(pages[:160])
    ix.search([query(queries[0])], 5)  # builds this generation's matrix
    gathered: list[int] = []
    real = LiveView.gather
    monkeypatch.setattr(LiveView, "gather", lambda self, positions: gathered.append(
        len(positions)) or real(self, positions))

    def same_as_fresh() -> None:
        got = [ix.search([query(q)], 10)[0] for q in queries]
        fresh = open_faiss(tmp_path / "c", index_type="flat")
        want = [fresh.search([query(q)], 10)[0] for q in queries]
        assert [[(h.key, round(h.score, 5)) for h in hits] for hits in got] == [
            [(h.key, round(h.score, 5)) for h in hits] for hits in want]

    ix.add(pages[160:])
    ix.search([query(queries[0])], 5)
    assert gathered == [40]  # the added pages only
    same_as_fresh()
    gathered.clear()
    ix.delete(["d005", "d170"])
    ix.search([query(queries[0])], 5)
    assert gathered == [0]  # nothing converted: the kept rows are copied
    same_as_fresh()


def test_search_options_override_the_opened_ones_per_search(tmp_path, monkeypatch):
    """rerank / candidates / nprobe / token_k per search call (the SDK's per-search path)."""
    pages, queries = structured_pages(np.random.default_rng(5), 120)
    coded = open_faiss(tmp_path / "q", manifest("multi", 32), quantization="int8")
    coded.add(pages)
    for q in queries[:3]:  # every page reaches stage 2: exact
        assert [h.key for h in coded.search([query(q)], 10, rerank=500)[0]] == \
            exact_top(pages, q, 10)
    budgets = []
    real = faiss_search.two_stage
    monkeypatch.setattr(faiss_search, "two_stage",
                        lambda *a, **kw: budgets.append(kw["budget"]) or real(*a, **kw))
    ann_ix = open_faiss(tmp_path / "a", manifest("multi", 32), index_type="ivf", candidates=40)
    ann_ix.add(pages)
    ann_ix.search([query(queries[0])], 5)
    ann_ix.search([query(queries[0])], 5, candidates=7)
    ann_ix.search([query(queries[0])], 5, rerank=9, nprobe=2, token_k=16, threads=1)
    assert budgets == [40, 7, 9]
    for bad in ({"rerank": 0}, {"nprobe": 1.5}, {"candidates": True}, {"token_k": "8"}):
        with pytest.raises(UsageError, match="must be a positive integer"):
            ann_ix.search([query(queries[0])], 5, **bad)


# -- crash atomicity -------------------------------------------------------------------------


def _filled(tmp_path: Path, index_type: str = "hnsw"):
    rng = np.random.default_rng(9)
    ix = open_faiss(tmp_path / "c", manifest("multi", 16), index_type=index_type,
                    candidates=4, token_k=1000)
    ix.add([page(f"d{i}", normalized(rng.standard_normal((5, 16)))) for i in range(30)])
    ix.delete(["d0"])
    return ix, [query(normalized(rng.standard_normal((3, 16)))) for _ in range(3)], rng


@pytest.mark.parametrize("fail_at", range(1, 10))  # a commit makes 8 writes
@pytest.mark.parametrize("error_type", [OSError, KeyboardInterrupt])
def test_a_commit_failing_at_any_write_keeps_the_previous_generation(
        tmp_path, monkeypatch, fail_at, error_type):
    """Every write of a commit in turn fails halfway (Ctrl-C or a full disk)."""
    error = error_type("disk full")
    ix, queries, rng = _filled(tmp_path)
    before_files, before_hits, before_gen = snapshot(tmp_path / "c"), ix.search(queries, 5), \
        ix.stats()["generation"]
    new = [page(f"n{i}", normalized(rng.standard_normal((5, 16)))) for i in range(40)]
    real = files.atomic_write
    calls = []

    def torn_write(path, write):
        calls.append(path)
        if len(calls) != fail_at:
            return real(path, write)

        def half(f):  # part of the file reaches the disk, then the failure
            f.write(b"\x93NUMPY partial")
            raise error
        return real(path, half)

    monkeypatch.setattr(files, "atomic_write", torn_write)
    n_writes = None
    try:
        ix.add(new)
        n_writes = len(calls)
    except (OSError, KeyboardInterrupt) as exc:
        assert exc is error
    monkeypatch.setattr(files, "atomic_write", real)
    if n_writes is not None:  # fail_at is past this commit's last write: it committed
        assert fail_at > n_writes and ix.count() == 29 + 40
        return
    assert snapshot(tmp_path / "c") == before_files  # old files intact, debris removed
    for reader in (open_faiss(tmp_path / "c"), ix):  # a fresh reader and the failed writer
        assert reader.stats()["generation"] == before_gen
        assert reader.count() == 29 and reader.search(queries, 5) == before_hits
    ix.add(new)  # and the collection still takes commits
    assert ix.count() == 69


def test_a_killed_writer_leaves_the_previous_generation(tmp_path):
    ix, queries, _ = _filled(tmp_path)
    before_hits, before_count = ix.search(queries, 5), ix.count()
    ix.close()
    script = textwrap.dedent(f"""
        import os, sys
        import numpy as np
        sys.path[:0] = [{str(REPO)!r}, {str(REPO / "tests")!r}]
        from indexers.faiss import files
        from retriever import plugin_host
        from retriever.types import MultiVector, PageRecord
        ix = plugin_host.get_registry().create("indexer", "faiss", path={str(tmp_path / "c")!r})
        real, calls = files.atomic_write, []
        def dying(path, write):
            calls.append(path)
            if len(calls) == 3:
                with open(str(path) + files.TMP_MARK + "dead", "wb") as f:
                    f.write(b"half")
                os._exit(9)  # no cleanup, no finally: like a kill -9 or a power cut
            real(path, write)
        files.atomic_write = dying
        v = np.eye(16, dtype=np.float32)[:5]
        ix.add([PageRecord("x", "/x", 1, 1, 1, MultiVector(v, np.zeros((5, 4), np.float32)))])
    """)
    env = {**os.environ, "RETRIEVER_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == 9, done.stderr.decode()[-2000:]
    debris = [n for n in os.listdir(tmp_path / "c") if files.TMP_MARK in n]
    assert debris  # the dead writer left a torn file behind
    again = open_faiss(tmp_path / "c")
    assert again.count() == before_count and again.search(queries, 5) == before_hits
    rng = np.random.default_rng(10)
    again.add([page("y", normalized(rng.standard_normal((2, 16))))])
    assert not [n for n in os.listdir(tmp_path / "c") if files.TMP_MARK in n]
    assert again.count() == before_count + 1


def test_unreadable_pointer_is_a_clear_error(tmp_path):
    ix, _, _ = _filled(tmp_path, index_type="flat")
    (tmp_path / "c" / store.CURRENT).write_text("../../etc/passwd\n")
    with pytest.raises(RetrieverError, match="damaged"):
        open_faiss(tmp_path / "c").count()


# -- the device option: exact search with the pages held on a torch device -------------

def test_device_search_equals_the_host_search_and_follows_commits(tmp_path):
    pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    docs = [page(f"d{i:03d}", normalized(rng.standard_normal((12, 16)))) for i in range(40)]
    ix = open_faiss(tmp_path / "c", manifest("multi", 16), index_type="flat")
    ix.add(docs[:30])
    reader = open_faiss(tmp_path / "c", device="cpu")  # a search-time option, at open
    queries = [query(normalized(rng.standard_normal((5, 16)))) for _ in range(4)]

    def same(got, want):
        assert [h.key for h in got] == [h.key for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want],
                                   atol=1e-4)

    for got, want in zip(reader.search(queries, 6), ix.search(queries, 6)):
        same(got, want)
    uploaded = reader._view.built_of("device")[("device", "cpu")]
    ix.add(docs[30:])  # two commits: 10 pages added, 2 documents deleted
    ix.delete(["d003", "d017"])
    for got, want in zip(reader.search(queries, 6), ix.search(queries, 6)):
        same(got, want)
    carried = reader._view.built_of("device")[("device", "cpu")]
    assert carried.store is uploaded.store  # only the new pages were uploaded
    assert len(carried) == 38 and carried.store.n_slots == 40
    assert {h.key for r in reader.search(queries, 40) for h in r}.isdisjoint(
        {"d003:1", "d017:1"})
    # per search, without the open-time option
    same(ix.search(queries[:1], 6, device="cpu")[0], ix.search(queries[:1], 6)[0])


def test_device_option_naming_a_missing_device_fails_at_open(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    open_faiss(tmp_path / "c", manifest("multi", 16)).close()
    with pytest.raises(UsageError, match="not available"):
        open_faiss(tmp_path / "c", device="cuda")


def test_gather_page_by_page_or_per_segment_and_in_the_stored_dtype(tmp_path, monkeypatch):
    from indexers.faiss import state

    rng = np.random.default_rng(3)
    ix = open_faiss(tmp_path / "c", manifest("multi", 16), index_type="flat")
    docs = [page(f"g{i:02d}", normalized(rng.standard_normal((3 + i % 5, 16))))
            for i in range(30)]
    ix.add(docs[:12])
    ix.add(docs[12:])  # two segments
    ix.delete(["g04"])
    view = ix._fresh()
    positions = np.array([20, 2, 7, 25, 13], np.int64)  # across segments, out of order
    sliced, offsets = view.gather(positions)
    stored, stored_offsets = view.gather(positions, dtype=None)
    monkeypatch.setattr(state, "_SLICED_PAGES", 0)  # the per-segment path
    fancy, fancy_offsets = view.gather(positions)
    assert sliced.dtype == np.float32 and stored.dtype == np.float16  # the default storage
    np.testing.assert_array_equal(sliced, fancy)
    np.testing.assert_array_equal(offsets, fancy_offsets)
    np.testing.assert_array_equal(stored_offsets, offsets)
    np.testing.assert_array_equal(stored.astype(np.float32), sliced)
    by_key = {d.key: d.embedding.vectors for d in docs}
    for at, p in enumerate(positions):
        np.testing.assert_allclose(sliced[offsets[at]:offsets[at + 1]],
                                   by_key[view.keys[p]], atol=1e-3)  # float16 storage


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here")
def test_gather_announces_exactly_the_rows_it_reads_from_the_files(tmp_path, monkeypatch):
    """A shortlist's rows are announced to the OS before they are copied (read-ahead for
    pages not in the page cache); each hint covers one page's bytes in its vectors file."""
    rng = np.random.default_rng(5)
    ix = open_faiss(tmp_path / "c", manifest("multi", 16), index_type="flat")
    ix.add([page(f"h{i:02d}", normalized(rng.standard_normal((2 + i % 4, 16))))
            for i in range(10)])
    ix.add([page(f"k{i:02d}", normalized(rng.standard_normal((3, 16)))) for i in range(6)])
    ix.close()
    view = open_faiss(tmp_path / "c")._fresh()  # segments memory-mapped from disk
    hints: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def record(fd: int, offset: int, length: int, advice: int) -> None:
        hints.append((os.readlink(f"/proc/self/fd/{fd}"), offset, length))
        assert advice == os.POSIX_FADV_WILLNEED
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", record)
    positions = np.array([12, 3, 0, 15], np.int64)  # both segments
    vectors, offsets = view.gather(positions, dtype=None)
    assert len(hints) == positions.size
    announced = set()
    for name, offset, length in hints:
        with open(name, "rb") as f:
            f.seek(offset)
            announced.add(f.read(length))
    assert announced == {vectors[offsets[i]:offsets[i + 1]].tobytes()
                         for i in range(positions.size)}


def test_read_hints_skip_arrays_that_are_not_file_mappings():
    files.will_read(np.zeros((4, 2), np.float16), [(0, 2)])  # nothing to announce, no error


@pytest.mark.parametrize("quantization", ["binary", "int8"])
def test_codes_built_chunk_by_chunk_equal_the_one_pass_build(tmp_path, monkeypatch,
                                                             quantization):
    """A generation's codes are built from its stored vectors a few pages at a time (the
    host never holds them all as float32); the result is the one-pass build's."""
    from indexers.faiss import codes
    from retriever.search.twostage import CodeIndex

    rng = np.random.default_rng(11)
    ix = open_faiss(tmp_path / "c", manifest("multi", 16), quantization=quantization)
    ix.add([page(f"b{i:03d}", normalized(rng.standard_normal((4 + i % 7, 16))))
            for i in range(600)])  # past the centroid stage's threshold
    view = ix._fresh()
    monkeypatch.setattr(codes, "_BUILD_PAGES", 7)
    chunked = codes._code_index(view, quantization)
    whole = CodeIndex.build(*view.gather(np.arange(len(view))), quantization,
                            centroids=codes._centroids_for(len(view)))
    assert chunked.n_pages == whole.n_pages == 600
    np.testing.assert_array_equal(chunked.offsets, whole.offsets)
    np.testing.assert_array_equal(chunked.centroid_offsets, whole.centroid_offsets)
    for name in ("bits", "values", "scales"):
        if hasattr(whole.codes, name):
            np.testing.assert_array_equal(getattr(chunked.codes, name),
                                          getattr(whole.codes, name))
    np.testing.assert_array_equal(chunked.centroid_vectors(), whole.centroid_vectors())

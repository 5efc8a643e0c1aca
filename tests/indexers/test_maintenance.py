"""Storage upkeep of both backends (``MaintainableIndexer``): stats, optimize, verify, and
damage found when a collection opens.

Collections are built through the registry at the place the SDK looks for them
(``<home>/collections/c/<backend>``), so the same files are then opened through
``Retriever`` to see the errors a user would. Records are random (no model).
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from indexers.lancedb.maintenance import retention
from retriever import Retriever, maintenance, plugin_host
from retriever.errors import CollectionCorruptError
from retriever.integrity import verify_collection
from retriever.maintenance import StorageStats, optimize_collection, should_optimize
from retriever.manifest import EncoderIdentity, Manifest
from retriever.protocols import MaintainableIndexer
from retriever.search.lexical import analyze
from retriever.types import MultiVector, PageRecord, Region

DIM = 8
ENCODER = EncoderIdentity(name="test/random", model_id="random", revision="r1", dim=DIM,
                          kind="multi")
BACKENDS = {"lancedb": ("lancedb", {}), "lancedb-int8": ("lancedb", {"quantization": "int8"}),
            "faiss": ("faiss", {"index_type": "flat"}), "faiss-hnsw": ("faiss", {
                "index_type": "hnsw", "candidates": 3, "token_k": 1024})}
REBUILD_HINT = "retriever collections delete c, then index its files again"


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> str:
    if request.param.startswith("faiss"):
        pytest.importorskip("faiss")
    return request.param


def _path(home: Path, backend: str) -> Path:
    return home / "collections" / "c" / BACKENDS[backend][0]


def _open(backend: str, home: Path, create: bool = False):
    name, options = BACKENDS[backend]
    manifest = (Manifest(encoder=ENCODER, indexer=name,
                         quantization=options.get("quantization", "none")) if create else None)
    return plugin_host.get_registry().create("indexer", name, path=_path(home, backend),
                                             manifest=manifest, **options)


def _record(rng: np.random.Generator, doc: str, page: int, n: int = 4) -> PageRecord:
    lo = rng.uniform(0, 0.5, size=(n, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(0, 0.5, size=(n, 2))], axis=1)  # (n, 4)
    text = f"{doc} page {page} word{page * 7 % 5}"
    region = Region((0.1, 0.1, 0.9, 0.3), text, source="text_layer")
    return PageRecord(doc, f"/docs/{doc}.pdf", page, 100, 140,
                      MultiVector.normalized(rng.normal(size=(n, DIM)), boxes), [region])


def _many_commits(ix, docs: int = 40) -> None:
    """One commit per document (as ``retriever index`` does), plus a replace and a delete:
    ``2 * docs + 1 - 2`` pages when ``docs > 3``."""
    rng = np.random.default_rng(0)
    for d in range(docs):
        ix.add([_record(rng, f"d{d}", p) for p in (1, 2)])
    ix.add([_record(rng, "d1", p) for p in (1, 2, 3)])  # d1 rewritten, one page longer
    ix.delete(["d3"])


def _results(ix) -> tuple[list, list]:
    rng = np.random.default_rng(5)
    queries = [MultiVector.normalized(rng.normal(size=(3, DIM)), np.zeros((3, 4), np.float32))
               for _ in range(3)]
    vector = [[(h.key, round(h.score, 5)) for h in hits] for hits in ix.search(queries, 10)]
    # which regions match, not their BM25 scores: those count rows that were deleted or
    # rewritten until a compaction drops them (as any full-text index rebuild does)
    lexical = [sorted((h.key, h.region) for h in hits)
               for hits in ix.lexical_search([analyze("d17"), analyze("d1"), analyze("d3")], 10)]
    return vector, lexical


def _pages(ix) -> dict[str, tuple]:
    """Every stored page, as comparable bytes (every record has vectors: search finds it)."""
    rng = np.random.default_rng(1)
    q = MultiVector.normalized(rng.normal(size=(1, DIM)), np.zeros((1, 4), np.float32))
    keys = sorted(h.key for h in ix.search([q], 10_000)[0])
    return {r.key: (r.doc_id, r.page_number, r.embedding.vectors.astype(np.float32).tobytes(),
                    r.embedding.boxes.tobytes(), tuple(x.text for x in r.regions))
            for r in ix.get(keys)}


# -- optimize ---------------------------------------------------------------------------


def test_optimize_keeps_every_page_and_every_result_and_merges(backend, tmp_path):
    ix = _open(backend, tmp_path, create=True)
    assert isinstance(ix, MaintainableIndexer)
    _many_commits(ix)
    pages, results = _pages(ix), _results(ix)
    before = ix.storage_stats()
    assert before.pages == 79 and before.fragments > 1 and before.bytes > 0
    report = ix.optimize(timedelta(0))
    assert report.before == before and report.after.fragments == 1
    assert report.after.pages == 79 and report.after.version > before.version
    assert _pages(ix) == pages and _results(ix) == results
    assert ix.verify().ok
    reopened = _open(backend, tmp_path)  # and so for another process
    assert _pages(reopened) == pages and _results(reopened) == results
    if backend.startswith("lancedb"):
        assert before.versions > 40 and report.after.versions == 1
        assert report.versions_removed == before.versions
        assert report.after.bytes < before.bytes
        assert report.after.details["indices"][0]["unindexed_rows"] == 0  # FTS up to date


def test_optimize_twice_changes_nothing_more(backend, tmp_path):
    ix = _open(backend, tmp_path, create=True)
    _many_commits(ix, docs=5)
    ix.optimize(timedelta(0))
    again = ix.optimize(timedelta(0))
    assert again.after.fragments == again.before.fragments == 1
    assert again.after.pages == again.before.pages == 9


def test_lancedb_keeps_versions_a_reader_may_still_be_on(tmp_path):
    import lancedb

    ix = _open("lancedb", tmp_path, create=True)
    _many_commits(ix, docs=6)
    old_version = ix.version
    # a reader that started on the current version (a search in another process)
    reader = lancedb.connect(_path(tmp_path, "lancedb")).open_table("pages")
    reader.checkout(old_version)
    report = ix.optimize(timedelta(minutes=10))
    assert report.versions_removed == 0 and report.after.fragments == 1
    assert reader.to_arrow().num_rows == 11  # its files are still there
    ix.optimize(timedelta(0))  # nothing may be reading it any more: now it goes
    with pytest.raises(Exception):
        reader.to_arrow()


def test_retention_cuts_at_the_oldest_version_still_in_use():
    now = 1_000_000.0

    def at(*ages: float) -> list[dict]:  # ages in seconds before now, oldest first
        return [{"version": i + 1, "timestamp": datetime.fromtimestamp(now - a)}
                for i, a in enumerate(ages)]

    # v1 superseded 900 s ago, v2 superseded 300 s ago (< 600: in use), v3 the latest
    older_than = retention(at(2000, 900, 300), timedelta(seconds=600), now)
    assert 2000 > older_than.total_seconds() > 900  # removes v1 only, keeps v2
    older_than = retention(at(2000, 900, 300), timedelta(0), now)
    assert older_than.total_seconds() == pytest.approx(300)  # everything but the latest
    # a version made long ago but superseded a moment ago is still in use
    older_than = retention(at(5000, 10), timedelta(seconds=600), now)
    assert older_than.total_seconds() > 5000


def test_the_sdk_optimize_takes_the_lock_and_names_the_collection(backend, tmp_path):
    ix = _open(backend, tmp_path, create=True)
    _many_commits(ix, docs=4)
    ix.close()
    with Retriever("c", data_dir=tmp_path) as r:
        report = optimize_collection(r, timedelta(0))
        assert report.collection == "c" and report.to_dict()["fragments_after"] == 1
        assert verify_collection(r).ok and verify_collection(r).collection == "c"


# -- the auto-optimize rule -------------------------------------------------------------


def _stats(fragments: int, pages: int, unmerged: int) -> StorageStats:
    return StorageStats("lancedb", 1, 1, fragments, pages, unmerged, 0)


def test_the_auto_optimize_rule():
    assert not should_optimize(_stats(31, 1000, 1000))  # few fragments
    assert should_optimize(_stats(32, 64, 62))  # a new collection of 32 commits
    assert not should_optimize(_stats(40, 10_040, 40))  # 40 pages beside 10k: not yet
    assert should_optimize(_stats(40, 12_600, 2_600))  # a quarter grown since the last


def test_auto_optimize_runs_when_the_rule_says_so(tmp_path, monkeypatch):
    from retriever.indexing import IndexReport

    ix = _open("lancedb", tmp_path, create=True)
    _many_commits(ix, docs=40)
    nothing = IndexReport()
    assert maintenance.auto_optimize(ix, nothing, "c") is None  # the run committed nothing
    done = IndexReport(indexed=["/docs/x.pdf"])
    report = maintenance.auto_optimize(ix, done, "c")
    assert report is not None and report.collection == "c" and report.after.fragments == 1
    assert maintenance.auto_optimize(ix, done, "c") is None  # merged now: below the rule
    monkeypatch.setattr(type(ix), "optimize", lambda self, keep: 1 / 0)
    monkeypatch.setattr(maintenance, "AUTO_MIN_FRAGMENTS", 1)
    monkeypatch.setattr(maintenance, "AUTO_GROWTH", 0.0)
    assert maintenance.auto_optimize(ix, done, "c") is None  # a failure is only a warning


# -- verify -----------------------------------------------------------------------------


def test_verify_passes_a_whole_collection(backend, tmp_path):
    ix = _open(backend, tmp_path, create=True)
    _many_commits(ix, docs=5)
    report = ix.verify()
    assert report.ok, report.problems
    assert (report.pages, report.documents) == (9, 4)


def test_verify_reports_a_gap_in_a_documents_pages(backend, tmp_path):
    ix = _open(backend, tmp_path, create=True)
    rng = np.random.default_rng(0)
    ix.add([_record(rng, "gappy", 1), _record(rng, "gappy", 3), _record(rng, "fine", 1)])
    report = ix.verify()
    assert report.problems == ["document gappy: pages 1..3 not contiguous (missing 2)"]


def test_verify_reports_a_deleted_lancedb_data_file(tmp_path):
    ix = _open("lancedb", tmp_path, create=True)
    _many_commits(ix, docs=5)
    _newest_data_file(tmp_path).unlink()
    report = _open("lancedb", tmp_path).verify()
    assert not report.ok and "cannot be read" in report.problems[0]
    with Retriever("c", data_dir=tmp_path) as r:
        via_sdk = verify_collection(r)  # the open check fails first: that is the problem
    assert not via_sdk.ok and via_sdk.backend == "lancedb"
    assert via_sdk.problems[0].startswith("collection 'c' cannot be read:")


def test_verify_reports_a_deleted_faiss_segment_file(tmp_path):
    pytest.importorskip("faiss")
    ix = _open("faiss", tmp_path, create=True)
    _many_commits(ix, docs=5)
    (next(_path(tmp_path, "faiss").glob("seg-*.pages.jsonl"))).unlink()
    report = _open("faiss", tmp_path).verify()
    assert not report.ok and report.problems[0].startswith("missing file: seg-")


def test_verify_reports_bad_vectors_and_boxes_on_disk(tmp_path):
    pytest.importorskip("faiss")
    ix = _open("faiss", tmp_path, create=True)
    rng = np.random.default_rng(0)
    ix.add([_record(rng, "a", 1), _record(rng, "b", 1)])
    folder = _path(tmp_path, "faiss")
    vectors_file = next(folder.glob("seg-*.vectors.npy"))
    vectors = np.load(vectors_file)
    vectors[0, 0] = np.nan  # page a:1
    np.save(vectors_file, vectors)
    boxes_file = next(folder.glob("seg-*.boxes.npy"))
    boxes = np.load(boxes_file)
    boxes[-1] = [0.5, 0.5, 2.0, 0.1]  # page b:1
    np.save(boxes_file, boxes)
    problems = _open("faiss", tmp_path).verify().problems
    assert problems == ["page a:1: vectors contain NaN or inf",
                        "page b:1: boxes must be normalized [x0, y0, x1, y1]"]


def test_verify_reports_a_garbled_faiss_manifest(tmp_path):
    pytest.importorskip("faiss")
    ix = _open("faiss", tmp_path, create=True)
    _many_commits(ix, docs=3)
    (_path(tmp_path, "faiss") / "manifest.json").write_text("{not json")
    report = ix.verify()  # an open indexer: its manifest was read before the damage
    assert not report.ok and "manifest is unreadable" in report.problems[0]


# -- damage found on open -----------------------------------------------------------------


def _lance_table(home: Path) -> Path:
    return _path(home, "lancedb") / "pages.lance"


def _newest_data_file(home: Path) -> Path:
    """The data file of the last commit that wrote pages: the current version needs it."""
    return max((_lance_table(home) / "data").iterdir(), key=lambda f: f.stat().st_mtime_ns)


def _garble_latest_manifest(home: Path) -> None:
    # v2 manifest names count down: the first in name order is the latest version
    latest = sorted((_lance_table(home) / "_versions").glob("*.manifest"))[0]
    latest.write_bytes(b"garbage" * 8)


def _faiss_format(home: Path) -> None:
    folder = _path(home, "faiss")
    current = (folder / "CURRENT").read_text().strip()
    data = json.loads((folder / current).read_text())
    (folder / current).write_text(json.dumps({**data, "format": 99}))


DAMAGE = {
    "lancedb: a data file deleted": ("lancedb", lambda h: _newest_data_file(h).unlink(),
                                     "Not found"),
    "lancedb: the latest table manifest garbled": ("lancedb", _garble_latest_manifest, "lance"),
    "lancedb: the table's versions gone": ("lancedb", lambda h: shutil.rmtree(
        _lance_table(h) / "_versions"), "no readable lancedb collection in"),
    "faiss: manifest.json garbled": ("faiss", lambda h: (
        _path(h, "faiss") / "manifest.json").write_text("{oops"), "manifest is unreadable"),
    "faiss: manifest.json deleted": ("faiss", lambda h: (
        _path(h, "faiss") / "manifest.json").unlink(), "no readable faiss collection in"),
    "faiss: an unknown format number": ("faiss", _faiss_format,
                                        "unknown FAISS collection format 99"),
    "faiss: a segment file deleted": ("faiss", lambda h: next(
        _path(h, "faiss").glob("seg-*.vectors.npy")).unlink(), "is missing"),
    "faiss: CURRENT damaged": ("faiss", lambda h: (
        _path(h, "faiss") / "CURRENT").write_text("../../etc/passwd"), "is damaged"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_collection_gives_one_clear_error_on_open(damage, tmp_path):
    backend, harm, detail = DAMAGE[damage]
    if backend == "faiss":
        pytest.importorskip("faiss")
    ix = _open(backend, tmp_path, create=True)
    _many_commits(ix, docs=3)
    ix.close()
    harm(tmp_path)
    with Retriever("c", data_dir=tmp_path) as r:
        with pytest.raises(CollectionCorruptError) as caught:
            r.indexer  # noqa: B018 - opening is the test
    error = caught.value
    assert error.message.startswith("collection 'c' cannot be read: ")
    assert detail.lower() in error.message.lower()
    assert REBUILD_HINT in (error.hint or "") and "verify c" in (error.hint or "")
    assert error.exit_code == 1
    Retriever.delete_collection("c", tmp_path)  # the way out the hint names works
    assert Retriever.list_collections(tmp_path) == []


def test_a_whole_collection_opens_with_its_check(backend, tmp_path):
    ix = _open(backend, tmp_path, create=True)
    _many_commits(ix, docs=3)
    ix.close()
    with Retriever("c", data_dir=tmp_path) as r:
        assert r.indexer.count() == 7
        stats = r.indexer.storage_stats()
        assert stats.backend == BACKENDS[backend][0] and stats.pages == 7


def test_storage_stats_report_the_history_on_disk(tmp_path):
    ix = _open("lancedb", tmp_path, create=True)
    _many_commits(ix, docs=3)
    stats = ix.storage_stats()
    assert stats.versions == stats.version == ix.version  # nothing removed yet
    assert stats.fragments >= 3 and 0 < stats.unmerged_pages < stats.pages
    ix.add([_record(np.random.default_rng(9), "new", 1)])
    assert ix.storage_stats().version == stats.version + 1


def test_an_index_run_optimizes_at_its_end_when_the_rule_says_so(tmp_path, monkeypatch):

    from repo_paths import SAMPLES

    from example_plugin_host import register_example_plugin


    register_example_plugin()
    monkeypatch.setattr(maintenance, "AUTO_MIN_FRAGMENTS", 3)  # the samples are few
    files = [SAMPLES / n for n in ("invoice.pdf", "slide.pdf", "annual-report.pdf")]
    with Retriever("c", data_dir=tmp_path, encoder="example/hashing") as r:
        r.index(files[:2])  # two commits: below the rule
        assert r.indexer.storage_stats().fragments == 2
        r.index(files)  # the third commit makes three fragments: merged at the end
        stats = r.indexer.storage_stats()
        assert stats.fragments == 1 and stats.pages == 5
        assert len(r.search("IBAN bank transfer", k=1)) == 1

"""The SDK over real LanceDB: incremental indexing, replacement, deletion, interruption."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.errors import CollectionNotFoundError, IndexInterrupted, ManifestMismatchError



pytestmark = pytest.mark.usefixtures("example_plugin")


def _retriever(home: Path, **kw) -> Retriever:
    return Retriever("t", data_dir=home, encoder=kw.pop("encoder", "example/hashing"), **kw)


def test_index_search_and_skip_unchanged(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SAMPLES / "invoice.pdf", docs)
    shutil.copy(SAMPLES / "slide.pdf", docs)
    with _retriever(tmp_path) as r:
        report = r.index([docs])
        assert len(report.indexed) == 2 and report.ok and report.pages == 2
        hits = r.search("IBAN bank transfer", k=2)
        assert Path(hits[0].source).name == "invoice.pdf" and hits[0].rank == 1
        assert hits[0].regions and all(h.page == 1 for h in hits)
    with _retriever(tmp_path) as r:
        again = r.index([docs])
        assert again.indexed == [] and len(again.unchanged) == 2


def test_changed_file_replaces_its_old_version(tmp_path):
    target = tmp_path / "doc.pdf"
    shutil.copy(SAMPLES / "invoice.pdf", target)
    with _retriever(tmp_path) as r:
        r.index([target])
        old_ids = set(r.indexer.documents())
    shutil.copy(SAMPLES / "slide.pdf", target)  # same path, new content
    with _retriever(tmp_path) as r:
        report = r.index([target])
        assert report.replaced == [str(target.resolve())]
        docs = r.indexer.documents()
        assert len(docs) == 1 and not (set(docs) & old_ids)
        assert r.delete([str(target)]).pages == 1
        assert r.indexer.count() == 0


def test_reopening_uses_the_stored_encoder_and_refuses_another(tmp_path):
    with _retriever(tmp_path) as r:
        r.index([SAMPLES / "invoice.pdf"])
    with Retriever("t", data_dir=tmp_path) as reopened:  # no encoder given
        assert reopened.encoder.name == "example/hashing"
        assert reopened.search("invoice total")[0].page == 1
    with pytest.raises(ManifestMismatchError, match="was built with encoder example/hashing"):
        with Retriever("t", data_dir=tmp_path, encoder="example/hashing",
                       encoder_options={"dim": 64}) as other:
            other.search("anything")


def test_missing_collection(tmp_path):
    with pytest.raises(CollectionNotFoundError):
        Retriever("nothing-here", data_dir=tmp_path).search("x")
    assert Retriever.list_collections(tmp_path) == []


def test_interrupt_keeps_finished_documents(tmp_path, monkeypatch):
    """Ctrl-C in the middle of a batch: documents already written stay intact."""
    from retriever import indexing

    files = [SAMPLES / "annual-report.pdf", SAMPLES / "invoice.pdf", SAMPLES / "slide.pdf"]
    real = indexing.encode_document
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(indexing, "encode_document", interrupted)
    with pytest.raises(IndexInterrupted) as stopped:  # a KeyboardInterrupt, with the report
        _retriever(tmp_path).index(files)
    assert stopped.value.report.indexed == [str(files[0].resolve())]
    assert stopped.value.report.interrupted
    monkeypatch.setattr(indexing, "encode_document", real)
    with _retriever(tmp_path) as r:
        assert list(r.indexer.documents().values()) == [str(files[0].resolve())]
        report = r.index(files)
        assert len(report.unchanged) == 1 and len(report.indexed) == 2


def test_one_bad_file_does_not_stop_the_batch(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with _retriever(tmp_path) as r:
        report = r.index([bad, SAMPLES / "invoice.pdf"])
    assert [f.reason for f in report.failed] == ["corrupt"]
    assert report.failed[0].path.endswith("bad.png") and len(report.indexed) == 1

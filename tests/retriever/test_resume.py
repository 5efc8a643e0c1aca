"""Page-batch staging: a document interrupted halfway is invisible to search, and the next
run encodes only the pages that were not staged (both built-in backends)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from repo_paths import SAMPLES
from retriever import Retriever, pipeline
from retriever.errors import IndexInterrupted
from retriever.indexing import staging_for
from retriever.staging import STAGING_DIR, Staging

from example_plugin_host import register_example_plugin

BACKENDS = ["lancedb", "faiss"]


@pytest.fixture(autouse=True)
def example_plugin(monkeypatch):
    register_example_plugin()
    monkeypatch.setattr(pipeline, "PAGE_BATCH", 2)  # several batches per document
    yield


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory) -> Path:
    """Nine real pages: the sample report three times over (pdfunite)."""
    out = tmp_path_factory.mktemp("long") / "long.pdf"
    report = str(SAMPLES / "annual-report.pdf")
    subprocess.run(["pdfunite", report, report, report, str(out)], check=True)
    return out


def _open(home: Path, backend: str) -> Retriever:
    return Retriever("t", data_dir=home, encoder="example/hashing", indexer=backend)


def _interrupt_after(r: Retriever, calls: int) -> None:
    """Ctrl-C during the ``calls``+1-th encoder call, as a user's would land."""
    encoder, real, seen = r.encoder, r.encoder.encode_pages, {"n": 0}

    def encode_pages(pages):
        seen["n"] += 1
        if seen["n"] > calls:
            raise KeyboardInterrupt
        return real(pages)

    encoder.encode_pages = encode_pages


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_interrupted_document_resumes_where_it_stopped(tmp_path, long_pdf, backend):
    with _open(tmp_path, backend) as r:
        r.index([SAMPLES / "invoice.pdf"], workers=0)
        _interrupt_after(r, 2)  # two batches of two pages staged, then Ctrl-C
        with pytest.raises(IndexInterrupted) as stopped:
            r.index([long_pdf], workers=0)
        report = stopped.value.report
        assert report.encoded_pages == 4 and report.staged == [str(long_pdf.resolve())]
        assert report.indexed == [] and r.pending() == {next(iter(r.pending())): 4}
        # staged pages are not in the collection: search and bookkeeping never see them
        assert [Path(p).name for p in r.documents().values() for p in p] == ["invoice.pdf"]
        assert {Path(h.source).name for h in r.search("revenue", k=10)} == {"invoice.pdf"}
    with _open(tmp_path, backend) as r:
        report = r.index([long_pdf], workers=0)
        assert report.indexed == [str(long_pdf.resolve())]
        assert (report.pages, report.encoded_pages, report.reused_pages) == (9, 5, 4)
        assert r.pending() == {}
        root = staging_for(r.indexer).root
        assert root.name == STAGING_DIR and (not root.exists() or not any(root.iterdir()))
        resumed = {rec.key: rec for rec in r.indexer.get(
            [f"{d}:{n}" for d in r.documents() for n in range(1, 10)
             if Path(r.documents()[d][0]).name == "long.pdf"])}
    with _open(tmp_path / "fresh", backend) as r:  # the same document, never interrupted
        r.index([long_pdf], workers=0)
        fresh = {rec.key: rec for rec in r.indexer.get(list(resumed))}
    for key, rec in resumed.items():
        np.testing.assert_array_equal(rec.embedding.vectors, fresh[key].embedding.vectors)
        assert list(rec.regions) == list(fresh[key].regions)
        assert rec.source == fresh[key].source


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_resumed_replacement_removes_the_old_version(tmp_path, long_pdf, backend):
    target = tmp_path / "docs" / "doc.pdf"
    target.parent.mkdir()
    target.write_bytes((SAMPLES / "invoice.pdf").read_bytes())
    with _open(tmp_path, backend) as r:
        r.index([target], workers=0)
        target.write_bytes(long_pdf.read_bytes())  # the file changes: 9 pages now
        _interrupt_after(r, 1)
        with pytest.raises(IndexInterrupted):
            r.index([target], workers=0)
        (old,) = r.documents()  # the old version stays searchable until the new is whole
        assert r.indexer.count() == 1
    with _open(tmp_path, backend) as r:
        report = r.index([target], workers=0)
        assert report.replaced == [str(target.resolve())] and report.reused_pages == 2
        (new,) = r.documents()
        assert new != old and r.indexer.count() == 9


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bad_document_leaves_nothing_staged(tmp_path, long_pdf, backend):
    with _open(tmp_path, backend) as r:
        encoder, real, seen = r.encoder, r.encoder.encode_pages, {"n": 0}

        def encode_pages(pages):
            seen["n"] += 1
            if seen["n"] == 3:
                raise ValueError("a bug in some encoder")
            return real(pages)

        encoder.encode_pages = encode_pages
        report = r.index([long_pdf, SAMPLES / "slide.pdf"], workers=0)
        assert [Path(p).name for p in report.indexed] == ["slide.pdf"]
        assert "a bug in some encoder" in report.failed[0].detail
        assert r.pending() == {}


def test_pages_committed_but_not_yet_discarded_are_cleaned_up(tmp_path, long_pdf):
    """A kill between a document's commit and the removal of its staged batches leaves
    batches of a document the collection holds whole: the next run drops them."""
    with _open(tmp_path, "lancedb") as r:
        r.index([long_pdf], workers=0)
        (doc_id,) = r.documents()
        staging = staging_for(r.indexer)
        for batch in [r.indexer.get([f"{doc_id}:1", f"{doc_id}:2"])]:
            staging.add(batch)
        assert staging.documents() == [doc_id] and r.pending() == {}  # searchable already
        report = r.index([long_pdf], workers=0)
        assert report.unchanged and staging.documents() == []


def test_staged_batches_round_trip_and_ignore_torn_files(tmp_path, long_pdf):
    with _open(tmp_path / "c", "lancedb") as r:
        r.index([long_pdf], workers=0)
        (doc_id,) = r.documents()
        records = r.indexer.get([f"{doc_id}:{n}" for n in range(1, 10)])
    staging = Staging(tmp_path / "s")
    staging.add(records[:4])
    staging.add(records[4:])
    assert staging.pages(doc_id) == frozenset(range(1, 10)) and staging.has_text(doc_id)
    back = [rec for batch in staging.batches(doc_id) for rec in batch]
    assert [b.key for b in back] == [rec.key for rec in records]
    for a, b in zip(back, records):
        np.testing.assert_array_equal(a.embedding.boxes, b.embedding.boxes)
        assert list(a.regions) == list(b.regions) and a.width == b.width
    (tmp_path / "s" / doc_id / "p000005.npz").write_bytes(b"torn")  # a damaged batch
    assert staging.pages(doc_id) == frozenset(range(1, 5))  # its pages get encoded again
    with pytest.raises(Exception, match="cannot stage"):
        staging.pages("../escape")
    staging.discard(doc_id)
    assert staging.documents() == []

"""Moved, copied and deleted files; odd file names; one file's bug does not stop a batch."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.errors import MissingDependencyError

from example_plugin_host import retriever_example_plugin

BACKENDS = ["lancedb", "faiss"]


pytestmark = pytest.mark.usefixtures("example_plugin")


@pytest.fixture
def encoded(monkeypatch) -> list[int]:
    """Pages the encoder is asked to encode."""
    calls: list[int] = []
    real = retriever_example_plugin.HashingEncoder.encode_pages

    def counting(self, pages):
        calls.append(len(pages))
        return real(self, pages)

    monkeypatch.setattr(retriever_example_plugin.HashingEncoder, "encode_pages", counting)
    return calls


def _open(home: Path, backend: str = "lancedb") -> Retriever:
    return Retriever("t", data_dir=home, encoder="example/hashing", indexer=backend)


def _put(path: Path, sample: str, variant: bytes = b"") -> str:
    """Copy a sample to ``path``; ``variant`` appended makes other content (same pages)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((SAMPLES / sample).read_bytes() + variant)
    return str(path.resolve())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_moved_file_updates_its_path_without_encoding_again(tmp_path, backend, encoded):
    old = _put(tmp_path / "docs" / "a" / "invoice.pdf", "invoice.pdf")
    with _open(tmp_path, backend) as r:
        r.index([tmp_path / "docs"])
    new = str((tmp_path / "docs" / "b" / "bill.pdf").resolve())
    os.makedirs(os.path.dirname(new))
    os.rename(old, new)
    encoded.clear()
    with _open(tmp_path, backend) as r:
        report = r.index([tmp_path / "docs"])
        assert report.moved == [new] and report.indexed == report.unchanged == []
        assert encoded == []
        assert list(r.documents().values()) == [[new]]
        hit = r.search("IBAN bank transfer", k=1)[0]
        assert hit.source == new and hit.paths == [new]
        assert r.index([tmp_path / "docs"]).unchanged == [new]  # and it stays put
    assert report.to_dict()["moved"] == [new]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_copied_file_records_both_paths_and_hits_name_one_that_exists(tmp_path, backend,
                                                                       encoded):
    first = _put(tmp_path / "docs" / "1.pdf", "invoice.pdf")
    second = _put(tmp_path / "docs" / "2.pdf", "invoice.pdf")
    with _open(tmp_path, backend) as r:
        report = r.index([tmp_path / "docs"])
        assert report.indexed == [first] and report.copied == [second]
        assert sum(encoded) == 1  # one page, encoded once
        assert list(r.documents().values()) == [[first, second]]
        hit = r.search("IBAN bank transfer", k=1)[0]
        assert hit.source == first and hit.paths == [first, second]
        os.remove(first)
        hit = r.search("IBAN bank transfer", k=1)[0]
        assert hit.source == second and hit.paths == [first, second]
        assert hit.to_dict()["paths"] == [first, second]


def test_a_changed_copy_keeps_the_other_path_on_the_old_version(tmp_path):
    first = _put(tmp_path / "docs" / "1.pdf", "invoice.pdf")
    second = _put(tmp_path / "docs" / "2.pdf", "invoice.pdf")
    with _open(tmp_path) as r:
        r.index([tmp_path / "docs"])
        (invoice,) = r.documents()
    _put(tmp_path / "docs" / "1.pdf", "slide.pdf")
    with _open(tmp_path) as r:
        report = r.index([tmp_path / "docs"])
        docs = r.documents()
    assert report.replaced == report.indexed == [first] and report.unchanged == [second]
    assert docs.pop(invoice) == [second] and list(docs.values()) == [[first]]


def test_a_file_changed_into_a_known_one_is_relinked(tmp_path, encoded):
    first = _put(tmp_path / "docs" / "1.pdf", "invoice.pdf")
    second = _put(tmp_path / "docs" / "2.pdf", "slide.pdf")
    with _open(tmp_path) as r:
        r.index([tmp_path / "docs"])
    _put(tmp_path / "docs" / "2.pdf", "invoice.pdf")  # now a copy of 1.pdf
    encoded.clear()
    with _open(tmp_path) as r:
        report = r.index([tmp_path / "docs"])
        assert list(r.documents().values()) == [[first, second]] and encoded == []
    assert report.replaced == report.copied == [second]


@pytest.mark.parametrize("backend", BACKENDS)
def test_sync_removes_files_gone_from_the_roots_only(tmp_path, backend):
    keep = _put(tmp_path / "a" / "keep.pdf", "invoice.pdf")
    gone = _put(tmp_path / "a" / "sub" / "gone.pdf", "slide.pdf")
    outside = _put(tmp_path / "b" / "outside.pdf", "annual-report.pdf")
    twin_in = _put(tmp_path / "a" / "twin.pdf", "invoice.pdf", b"\n% twin\n")
    twin_out = _put(tmp_path / "b" / "twin.pdf", "invoice.pdf", b"\n% twin\n")
    with _open(tmp_path, backend) as r:
        r.index([tmp_path / "a", tmp_path / "b"])
    for path in (gone, outside, twin_in):
        os.remove(path)
    with _open(tmp_path, backend) as r:
        plain = r.index([tmp_path / "a"])  # without sync nothing is removed
        assert plain.removed == [] and len(r.documents()) == 4
        report = r.index([tmp_path / "a"], sync=True)
        assert sorted(report.removed) == sorted([gone, twin_in])
        assert report.to_dict()["removed"] == report.removed
        paths = sorted(r.documents().values())
    # outside the root: untouched even though it is gone; the twin keeps its other path
    assert paths == sorted([[keep], [outside], [twin_out]])


def test_sync_of_a_deleted_directory(tmp_path):
    _put(tmp_path / "a" / "x.pdf", "invoice.pdf")
    kept = _put(tmp_path / "b" / "y.pdf", "slide.pdf")
    with _open(tmp_path) as r:
        r.index([tmp_path / "a", tmp_path / "b"])
    shutil.rmtree(tmp_path / "a")
    with _open(tmp_path) as r:
        report = r.index([tmp_path / "a"], sync=True)
        assert [f.reason for f in report.failed] == ["not-found"]
        assert len(report.removed) == 1 and list(r.documents().values()) == [[kept]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_delete_by_path_directory_or_doc_id(tmp_path, backend):
    one = _put(tmp_path / "d" / "1.pdf", "invoice.pdf")
    copy = _put(tmp_path / "d" / "sub" / "copy.pdf", "invoice.pdf")
    two = _put(tmp_path / "d" / "sub" / "2.pdf", "slide.pdf")
    three = _put(tmp_path / "e" / "3.pdf", "annual-report.pdf")
    with _open(tmp_path, backend) as r:
        r.index([tmp_path / "d", tmp_path / "e"])
        ids = {paths[0]: d for d, paths in r.documents().items()}
        gone = r.delete([tmp_path / "d" / "sub"])  # a directory: every file under it
        assert sorted(gone.paths) == sorted([copy, two]) and gone.documents == [ids[two]]
        assert gone.pages == 1 and gone.matched and gone.unmatched == []
        assert r.documents()[ids[one]] == [one]  # the copy went, the original stays
        by_id = r.delete([ids[three], str(tmp_path / "nothing.pdf")])
        assert by_id.documents == [ids[three]] and by_id.pages == 3
        assert by_id.unmatched == [str(tmp_path / "nothing.pdf")]
        assert not r.delete(["no-such-doc"]).matched
        assert r.delete([one]).to_dict()["documents"] == [ids[one]]
        assert r.documents() == {}


def test_a_file_name_that_is_not_utf8_is_indexed_and_found(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    name = os.fsdecode(os.fsencode(str(docs)) + b"/\xff\xfe.pdf")
    shutil.copy(SAMPLES / "invoice.pdf", name)
    _put(docs / "slide.pdf", "slide.pdf")
    with _open(tmp_path) as r:
        report = r.index([docs])
        assert report.failed == [] and name in report.indexed
    with _open(tmp_path) as r:
        hit = r.search("IBAN bank transfer", k=1)[0]
        assert hit.source == name and os.path.isfile(hit.source)
        assert r.index([docs]).unchanged == sorted(report.indexed)


def test_an_unexpected_error_in_one_file_does_not_stop_the_batch(tmp_path, monkeypatch):
    from retriever import indexing

    real = indexing.encode_document

    def buggy(job, *args, **kwargs):
        if job.path.name == "invoice.pdf":
            raise ValueError("a bug in some plugin")
        return real(job, *args, **kwargs)

    monkeypatch.setattr(indexing, "encode_document", buggy)
    with _open(tmp_path) as r:
        report = r.index([SAMPLES / "invoice.pdf", SAMPLES / "slide.pdf"])
    assert [Path(p).name for p in report.indexed] == ["slide.pdf"]
    (failure,) = report.failed
    assert failure.reason == "error" and "ValueError: a bug in some plugin" in failure.detail

    def missing(job, *args, **kwargs):
        raise MissingDependencyError("tesseract is not installed")

    monkeypatch.setattr(indexing, "encode_document", missing)
    with pytest.raises(MissingDependencyError), _open(tmp_path) as r:
        r.index([SAMPLES / "annual-report.pdf"])

"""open_document() front door: identity by content hash, and input checks before decoding."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

from retriever.errors import BadInputError, UsageError
from retriever.ingest import content_hash, file_sha256, open_document


def _png(path: Path, color: tuple[int, int, int] = (10, 20, 30)) -> Path:
    Image.new("RGB", (8, 4), color).save(path)
    return path


def _error(path: Path, **kwargs) -> BadInputError:
    with pytest.raises(BadInputError) as info:
        open_document(path, **kwargs)
    err = info.value
    assert err.path == str(path) and str(path) in str(err) and err.reason in str(err)
    return err


def test_doc_id_is_the_content_hash_prefix(tmp_path: Path) -> None:
    path = _png(tmp_path / "a.png")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == digest and content_hash(path) == digest[:20]
    doc = open_document(path)
    assert doc.doc_id == digest[:20]
    assert doc.path == path and doc.source == str(path)


def test_a_known_doc_id_is_not_recomputed(tmp_path: Path) -> None:
    path = _png(tmp_path / "a.png")
    doc = open_document(path, doc_id="0123456789abcdef0123")
    assert [p.doc_id for p in doc.pages()] == ["0123456789abcdef0123"]
    with pytest.raises(UsageError):
        open_document(path, doc_id="not-a-hash")


def test_with_render_reuses_the_validated_document(tmp_path: Path) -> None:
    probe = open_document(_png(tmp_path / "a.png"), render=False)
    assert next(probe.pages()).image is None
    page = next(probe.with_render().pages())
    assert page.image is not None and page.image.size == (8, 4)


def test_same_bytes_same_id_wherever_they_live(tmp_path: Path) -> None:
    first = _png(tmp_path / "a.png")
    moved = tmp_path / "sub" / "renamed.png"
    moved.parent.mkdir()
    moved.write_bytes(first.read_bytes())
    other = _png(tmp_path / "b.png", (200, 0, 0))
    assert open_document(first).doc_id == open_document(moved).doc_id
    assert open_document(first).doc_id != open_document(other).doc_id


def test_content_hash_streams_large_files(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)  # several read chunks and a partial one
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    assert _error(tmp_path / "nope.pdf").reason == "not-found"
    with pytest.raises(BadInputError) as info:
        content_hash(tmp_path / "nope.pdf")
    assert info.value.reason == "not-found"


def test_directory_and_unknown_type_are_unsupported(tmp_path: Path) -> None:
    folder = tmp_path / "folder.pdf"
    folder.mkdir()
    assert _error(folder).reason == "unsupported"
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    err = _error(text)
    assert err.reason == "unsupported" and ".txt" in err.detail


def test_zero_byte_image_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "zero.png"
    path.write_bytes(b"")
    err = _error(path)
    assert err.reason == "empty" and "zero-byte" in err.detail


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: chmod 000 does not stop root from reading the file",
)
@pytest.mark.parametrize("name", ["locked.png", "locked.pdf"])
def test_unreadable_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"%PDF-1.4 whatever" if name.endswith(".pdf") else b"\x89PNG....")
    path.chmod(0)
    try:
        err = _error(path)
    finally:
        path.chmod(0o600)
    assert err.reason == "unreadable"


def test_uppercase_suffix_is_supported(tmp_path: Path) -> None:
    doc = open_document(_png(tmp_path / "SCAN.PNG"))
    assert doc.kind == "image" and doc.page_count == 1


@pytest.mark.parametrize(
    "options", [{"dpi": 0}, {"dpi": True}, {"dpi": 72.5}, {"max_pixels": 0}, {"max_pixels": -5}]
)
def test_bad_options_are_usage_errors(tmp_path: Path, options: dict) -> None:
    with pytest.raises(UsageError):
        open_document(_png(tmp_path / "a.png"), **options)

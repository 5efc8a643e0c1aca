"""discover(): recursion, globs, hidden entries, unsupported and missing paths, dedupe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retriever.ingest import discover
from retriever.ingest.discover import matches_any
from retriever.types import FileFailure


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    _touch(
        root,
        "a.pdf", "b.png", "notes.txt", "README", ".f.pdf",
        "sub/c.jpg", "sub/deep/d.TIFF", "sub/deep/e.webp",
        ".hidden/g.pdf", "sub/.cache/h.png",
        "reports/2024/q1.pdf", "reports/2024/q1.bmp", "reports/summary.gif",
        "z.jpeg", "y.tif",
    )
    return root


def _rel(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_directory_is_walked_recursively_sorted_and_filtered(tree: Path) -> None:
    files, failures = discover([tree])
    assert failures == []
    assert _rel(files, tree) == [
        "a.pdf", "b.png",
        "reports/2024/q1.bmp", "reports/2024/q1.pdf", "reports/summary.gif",
        "sub/c.jpg", "sub/deep/d.TIFF", "sub/deep/e.webp",
        "y.tif", "z.jpeg",
    ]
    assert files == sorted(files)


def test_hidden_entries_are_skipped_inside_directories_but_not_when_named(tree: Path) -> None:
    files, _ = discover([tree])
    names = {p.name for p in files}
    assert not names & {".f.pdf", "g.pdf", "h.png"}

    files, failures = discover([tree / ".f.pdf", tree / ".hidden" / "g.pdf"])
    assert [p.name for p in files] == [".f.pdf", "g.pdf"] and failures == []


def test_include_patterns_match_relative_path_or_name(tree: Path) -> None:
    files, _ = discover([tree], include=["*.pdf"])
    assert _rel(files, tree) == ["a.pdf", "reports/2024/q1.pdf"]

    files, _ = discover([tree], include=["reports/**"])
    assert _rel(files, tree) == [
        "reports/2024/q1.bmp", "reports/2024/q1.pdf", "reports/summary.gif"]

    files, _ = discover([tree], include=["**/*.jpeg", "sub/deep/*"])
    assert _rel(files, tree) == ["sub/deep/d.TIFF", "sub/deep/e.webp", "z.jpeg"]


def test_exclude_patterns_and_directory_pruning(tree: Path) -> None:
    files, _ = discover([tree], exclude=["sub", "*.png"])
    assert _rel(files, tree) == [
        "a.pdf", "reports/2024/q1.bmp", "reports/2024/q1.pdf", "reports/summary.gif",
        "y.tif", "z.jpeg",
    ]
    files, _ = discover([tree], include=["*.pdf"], exclude=["reports/**"])
    assert _rel(files, tree) == ["a.pdf"]


def test_explicit_files_are_filtered_too(tree: Path) -> None:
    files, failures = discover([tree / "a.pdf", tree / "b.png"], exclude=["*.png"])
    assert files == [tree / "a.pdf"] and failures == []


def test_unsupported_explicit_file_is_a_failure_but_silent_in_directories(tree: Path) -> None:
    files, failures = discover([tree, tree / "notes.txt", tree / "README"])
    assert tree / "notes.txt" not in files
    assert failures == [
        FileFailure(str(tree / "README"), "unsupported", "file type (no suffix)"),
        FileFailure(str(tree / "notes.txt"), "unsupported", "file type .txt"),
    ]


def test_missing_path_is_not_found(tree: Path) -> None:
    missing = tree / "nope.pdf"
    files, failures = discover([missing, tree / "a.pdf"])
    assert files == [tree / "a.pdf"]
    assert len(failures) == 1
    assert failures[0].path == str(missing) and failures[0].reason == "not-found"
    assert str(missing) in str(failures[0])


def test_same_file_reached_twice_is_returned_once(tree: Path) -> None:
    link = tree.parent / "link.pdf"
    link.symlink_to(tree / "a.pdf")
    files, failures = discover([tree / "a.pdf", tree, tree / "sub" / ".." / "a.pdf", link, tree])
    assert failures == []
    assert [p for p in files if p.name in ("a.pdf", "link.pdf")] == [tree / "a.pdf"]
    assert len(files) == len(set(files)) == 10


def test_broken_symlink_in_directory_is_reported(tmp_path: Path) -> None:
    (tmp_path / "gone.pdf").symlink_to(tmp_path / "missing.pdf")
    _touch(tmp_path, "ok.png")
    files, failures = discover([tmp_path])
    assert files == [tmp_path / "ok.png"]
    assert [(f.path, f.reason) for f in failures] == [(str(tmp_path / "gone.pdf"), "not-found")]


def test_directory_symlinks_are_not_followed(tmp_path: Path) -> None:
    _touch(tmp_path, "real/a.pdf")
    os.symlink(tmp_path / "real", tmp_path / "loop")
    (tmp_path / "real" / "back").symlink_to(tmp_path)  # a cycle must not hang the walk
    files, _ = discover([tmp_path])
    assert files == [tmp_path / "real" / "a.pdf"]


def test_a_single_path_or_pattern_string_is_not_iterated(tree: Path) -> None:
    files, _ = discover(str(tree / "sub"), include="*.jpg")
    assert files == [tree / "sub" / "c.jpg"]


def test_matches_any_semantics() -> None:
    assert matches_any("a/b/c.pdf", ["*.pdf"])  # base name
    assert matches_any("a/b/c.pdf", ["a/**"])
    assert matches_any("c.pdf", ["**/c.pdf"])  # leading **/ may match nothing
    assert not matches_any("c.PDF", ["*.pdf"])  # case-sensitive like a shell glob
    assert not matches_any("a/b/c.pdf", [])

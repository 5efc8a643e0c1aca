"""Replacing a changed file is one commit: a crash leaves the old version or the new one.

The process "dies" (a BaseException the SDK does not catch) just before or just after each
commit the run makes, on LanceDB and on FAISS; the collection must then hold exactly one
whole version of the file, and the next run must leave only the new one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.ingest import content_hash



class Crash(BaseException):
    """The process dying: nothing in the SDK may catch it."""


pytestmark = pytest.mark.usefixtures("example_plugin")


def _open(home: Path, backend: str) -> Retriever:
    return Retriever("t", data_dir=home, encoder="example/hashing", indexer=backend)


class _Builder:
    """A LanceDB merge-insert builder whose ``execute`` is one commit of the plan."""

    def __init__(self, builder, commit):
        self._builder, self._commit = builder, commit

    def __getattr__(self, name):
        attr = getattr(self._builder, name)
        if name == "execute":
            return lambda *a, **kw: self._commit(lambda: attr(*a, **kw))
        return lambda *a, **kw: _Builder(attr(*a, **kw), self._commit)


class _CrashingTable:
    """Wraps a LanceDB table: every write is a commit, and one of them crashes."""

    def __init__(self, table, commit):
        self._table, self._commit = table, commit

    def __getattr__(self, name):
        attr = getattr(self._table, name)
        if name in ("add", "delete", "update"):
            return lambda *a, **kw: self._commit(lambda: attr(*a, **kw))
        if name == "merge_insert":
            return lambda *a, **kw: _Builder(attr(*a, **kw), self._commit)
        return attr


def _crash_at(monkeypatch, retriever: Retriever, backend: str, nth: int, when: str) -> list:
    commits: list[int] = []

    def commit(do):
        commits.append(1)
        if len(commits) == nth and when == "before":
            raise Crash
        out = do()
        if len(commits) == nth and when == "after":
            raise Crash
        return out

    indexer = retriever.indexer
    if backend == "lancedb":
        monkeypatch.setattr(indexer, "_handle", _CrashingTable(indexer._handle, commit))
    else:
        from indexers.faiss import store

        real = store.write_generation
        monkeypatch.setattr(store, "write_generation", lambda *a: commit(lambda: real(*a)))
    return commits


def _versions(home: Path, backend: str) -> dict[str, int]:
    """doc_id -> stored pages, from a fresh process's point of view."""
    with _open(home, backend) as r:
        docs = r.indexer.documents()
        pages = {d: 0 for d in docs}
        for key in (f"{d}:{p}" for d in docs for p in range(1, 10)):
            try:
                r.indexer.get([key])
            except Exception:
                continue
            pages[key.split(":")[0]] += 1
        return pages


@pytest.mark.parametrize("backend", ["lancedb", "faiss"])
@pytest.mark.parametrize("force", [False, True], ids=["changed", "force"])
@pytest.mark.parametrize("nth,when", [(1, "before"), (1, "after"), (2, "before"),
                                      (2, "after")])
def test_a_crash_around_any_commit_keeps_one_whole_version(tmp_path, monkeypatch, backend,
                                                          force, nth, when):
    target = tmp_path / "doc.pdf"
    shutil.copy(SAMPLES / "annual-report.pdf", target)  # 3 pages
    with _open(tmp_path, backend) as r:
        r.index([target])
        (old_id,) = r.indexer.documents()
    if not force:
        shutil.copy(SAMPLES / "invoice.pdf", target)  # same path, new content (1 page)
    new_id, new_pages = content_hash(target), 3 if force else 1
    r = _open(tmp_path, backend)
    commits = _crash_at(monkeypatch, r, backend, nth, when)
    try:
        r.index([target], force=force)
    except Crash:
        pass
    monkeypatch.undo()
    r.close()
    state = _versions(tmp_path, backend)
    assert state in ({old_id: 3}, {new_id: new_pages}), commits  # never both, never neither
    with _open(tmp_path, backend) as again:
        again.index([target], force=force)  # the same command again
    assert _versions(tmp_path, backend) == {new_id: new_pages}


@pytest.mark.parametrize("backend", ["lancedb", "faiss"])
def test_replacing_a_changed_file_is_one_commit(tmp_path, monkeypatch, backend):
    target = tmp_path / "doc.pdf"
    shutil.copy(SAMPLES / "invoice.pdf", target)
    with _open(tmp_path, backend) as r:
        r.index([target])
    shutil.copy(SAMPLES / "slide.pdf", target)
    r = _open(tmp_path, backend)
    commits = _crash_at(monkeypatch, r, backend, nth=99, when="after")
    report = r.index([target])
    r.close()
    assert report.replaced == [str(target.resolve())] and len(commits) == 1

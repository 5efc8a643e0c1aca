"""The per-collection writer lock between real processes (``retriever.locking``).

A helper process takes the lock and holds it until its stdin closes (or it is killed), so
every test sees a real second process: contention, the message naming its pid, a SIGKILLed
holder's lock taken over, searches that go on while a writer holds it, and two real
``retriever index`` runs on one collection (one succeeds, the other exits 8).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli_subprocess import cli, plugin_env
from repo_paths import REPO, SAMPLES
from retriever import Retriever
from retriever.errors import CollectionBusyError, ExitCode
from retriever.locking import lock_path, writer_lock

from example_plugin_host import register_example_plugin

_HOLDER = """
import sys
from retriever.locking import writer_lock
with writer_lock(sys.argv[1], sys.argv[2], sys.argv[3]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin, or kills us
"""
_ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@contextmanager
def held_elsewhere(home: Path, collection: str = "t",
                   operation: str = "index") -> Iterator[subprocess.Popen[str]]:
    """A separate process holding ``collection``'s writer lock for the block."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(home), collection, operation],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait(timeout=30)


@pytest.fixture
def example_plugin():
    register_example_plugin()


def _retriever(home: Path) -> Retriever:
    return Retriever("t", data_dir=home, encoder="example/hashing")


def test_a_second_process_is_refused_with_the_holders_pid_host_and_start(tmp_path):
    with held_elsewhere(tmp_path, operation="index") as holder:
        with pytest.raises(CollectionBusyError) as caught:
            with writer_lock(tmp_path, "t", "delete"):
                pytest.fail("the lock was taken twice")
    error = caught.value
    assert error.exit_code == ExitCode.BUSY == 8
    assert re.fullmatch(rf"collection 't' is being indexed by pid {holder.pid} on "
                        rf"{re.escape(socket.gethostname())} since {_ISO_UTC}", error.message)
    assert "retry" in (error.hint or "")
    assert error.holder["pid"] == holder.pid and error.holder["operation"] == "index"
    with writer_lock(tmp_path, "t"):  # released when the holder ended
        assert json.loads(lock_path(tmp_path, "t").read_text())["pid"] == os.getpid()


def test_the_lock_of_a_killed_process_is_simply_taken_over(tmp_path):
    with held_elsewhere(tmp_path) as holder:
        holder.send_signal(signal.SIGKILL)  # no cleanup runs: the kernel drops the flock
        holder.wait(timeout=30)
        with writer_lock(tmp_path, "t", "optimize"):
            mine = json.loads(lock_path(tmp_path, "t").read_text())
    assert mine["pid"] == os.getpid() and mine["operation"] == "optimize"


def test_other_collections_are_not_locked(tmp_path):
    with held_elsewhere(tmp_path, "t"):
        with writer_lock(tmp_path, "other"):
            pass


def test_reentrant_in_its_thread_busy_for_other_threads(tmp_path):
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            with writer_lock(tmp_path, "t"):
                pass
        except CollectionBusyError as exc:
            errors.append(exc)

    with writer_lock(tmp_path, "t", "index"):
        with writer_lock(tmp_path, "t", "optimize"):  # an index run that optimizes at its end
            pass
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1 and f"pid {os.getpid()}" in str(errors[0])
    with writer_lock(tmp_path, "t"):  # fully released after the outer block
        pass


def test_the_lock_file_is_no_collection_and_delete_collection_still_works(tmp_path, example_plugin):
    with _retriever(tmp_path) as r:
        r.index([SAMPLES / "invoice.pdf"])
    assert lock_path(tmp_path, "t").is_file()
    assert Retriever.list_collections(tmp_path) == ["t"]
    with held_elsewhere(tmp_path):
        with pytest.raises(CollectionBusyError, match="is being indexed"):
            Retriever.delete_collection("t", tmp_path)
    assert Retriever.list_collections(tmp_path) == ["t"]
    Retriever.delete_collection("t", tmp_path)
    assert Retriever.list_collections(tmp_path) == []


def test_index_and_delete_are_refused_while_searches_go_on(tmp_path, example_plugin):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SAMPLES / "invoice.pdf", docs)
    with _retriever(tmp_path) as r:
        r.index([docs])
        before = [(h.doc_id, h.page, h.score) for h in r.search("IBAN bank transfer", k=2)]
    shutil.copy(SAMPLES / "slide.pdf", docs)
    with held_elsewhere(tmp_path, operation="index") as holder, _retriever(tmp_path) as r:
        with pytest.raises(CollectionBusyError, match=f"pid {holder.pid}"):
            r.index([docs])
        with pytest.raises(CollectionBusyError):
            r.delete([str(docs / "invoice.pdf")])
        hits = r.search("IBAN bank transfer", k=2)  # readers never take the lock
        assert [(h.doc_id, h.page, h.score) for h in hits] == before
        assert len(r.documents()) == 1  # the refused run wrote nothing
    with _retriever(tmp_path) as r:  # the holder is gone: the same run now goes through
        assert len(r.index([docs]).indexed) == 1


@pytest.mark.slow
def test_two_concurrent_index_runs_one_succeeds_the_other_exits_8(tmp_path):
    """Two real ``retriever index`` processes: the first pauses inside its first encode
    (the test plugin's pause point) while the second starts and is refused."""
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SAMPLES / "invoice.pdf", docs)
    args = ["index", str(docs), "-e", "slow/hashing", "--indexer", "slow-lancedb", "--no-ocr",
            "--data-dir", str(tmp_path / "home")]
    env = plugin_env(tmp_path)
    first = subprocess.Popen(cli(*args), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**env, "RETRIEVER_TEST_PAUSE": "encode:1",
                                  "RETRIEVER_TEST_PAUSE_S": "8"})
    watchdog = threading.Timer(180, first.kill)
    watchdog.start()
    try:
        assert first.stderr is not None
        for line in first.stderr:
            if line.startswith("PAUSE encode:1"):
                break
        second = subprocess.run(cli(*args), cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=120)
        out, err = first.communicate(timeout=180)
    finally:
        watchdog.cancel()
    assert second.returncode == 8, second.stderr
    assert re.search(rf"error: collection 'default' is being indexed by pid {first.pid} on "
                     rf"\S+ since {_ISO_UTC}", second.stderr), second.stderr
    assert "hint: wait for it to finish" in second.stderr and "Traceback" not in second.stderr
    assert first.returncode == 0, err
    assert "1 file(s) indexed" in out

"""Ctrl-C on a real ``retriever index`` process: what was committed, exit 130, resumable.

SIGINT goes to a ``python -m cli index`` subprocess at three moments: while the encoder
loads, in the middle of a document, and inside a commit. The test plugin
(``interrupt_plugin.py``) announces each moment on stderr and waits there, so the signal
lands exactly in it. Afterwards the collection must open, hold only whole documents (the
ones the summary names), and the same command must resume where the run stopped.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from repo_paths import REPO, SAMPLES
from retriever.ingest import content_hash
from cli_subprocess import cli, plugin_env, run_cli

#: name in the folder (files are indexed in name order), sample, pages
FILES = [("1-invoice.pdf", "invoice.pdf", 1), ("2-annual-report.pdf", "annual-report.pdf", 3),
         ("3-slide.pdf", "slide.pdf", 1)]
RESUME_HINT = "re-run the same command to resume: unchanged files are skipped"
pytestmark = pytest.mark.slow  # real processes, two or three per test


@pytest.fixture
def setup(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, sample, _ in FILES:
        shutil.copy(SAMPLES / sample, docs / name)
    args = ["index", str(docs), "-e", "slow/hashing", "--indexer", "slow-lancedb",
            "--no-ocr", "--data-dir", str(tmp_path / "home")]
    return docs, args, plugin_env(tmp_path), tmp_path / "home" / "collections" / "default"


def _interrupted(env: dict[str, str], args: list[str], pause: str, seconds: float = 60):
    """Run until the plugin says ``PAUSE <pause>``, send SIGINT, wait for the end."""
    env = {**env, "RETRIEVER_TEST_PAUSE": pause, "RETRIEVER_TEST_PAUSE_S": str(seconds)}
    proc = subprocess.Popen(cli(*args), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    watchdog = threading.Timer(180, proc.kill)
    watchdog.start()
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(f"PAUSE {pause}".encode()):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=180)
    finally:
        watchdog.cancel()
    err = b"".join(seen) + err
    assert f"PAUSE {pause}".encode() in err, err.decode()[-3000:]
    return proc.returncode, out.decode(), err.decode()


def _stored(collection: Path) -> dict[str, list[int]]:
    """doc_id -> page numbers, read by a fresh reader (the collection must open)."""
    from indexers.lancedb.indexer import LanceDBIndexer

    path = collection / "slow-lancedb"
    if not path.exists():
        return {}
    ix = LanceDBIndexer(path)
    table = ix._scan(["doc_id", "page_number"])
    out: dict[str, list[int]] = {}
    for doc_id, page in zip(table.column("doc_id").to_pylist(),
                            table.column("page_number").to_pylist()):
        out.setdefault(doc_id, []).append(page)
    ix.close()
    return {d: sorted(p) for d, p in out.items()}


def _whole(docs: Path, names: list[str]) -> dict[str, list[int]]:
    pages = {name: n for name, _, n in FILES}
    return {content_hash(docs / n): list(range(1, pages[n] + 1)) for n in names}


def _resume(env, args, docs: Path, done: list[str]) -> None:
    again = run_cli(env, *args, "--json")
    assert again.returncode == 0, again.stderr.decode()[-3000:]
    report = json.loads(again.stdout)
    assert report["unchanged"] == [str((docs / n).resolve()) for n in done]
    assert len(report["indexed"]) == len(FILES) - len(done) and not report["interrupted"]


def test_ctrl_c_while_the_encoder_loads(setup):
    docs, args, env, collection = setup
    code, out, err = _interrupted(env, args, "load")
    assert code == 130
    assert "interrupted: 0 documents committed in this run" in err and RESUME_HINT in err
    assert "Traceback" not in err
    assert _stored(collection) == {}
    _resume(env, args, docs, [])
    assert _stored(collection) == _whole(docs, [n for n, _, _ in FILES])


def test_ctrl_c_in_the_middle_of_a_document(setup):
    docs, args, env, collection = setup
    code, out, err = _interrupted(env, args, "encode:2")  # encoding 2-annual-report.pdf
    assert code == 130, err[-3000:]
    first = str((docs / "1-invoice.pdf").resolve())
    assert f"interrupted: 1 document committed in this run (the last: {first})" in err
    assert RESUME_HINT in err and "Traceback" not in err
    assert "1 file(s) indexed" in out  # the usual summary, on stdout
    assert _stored(collection) == _whole(docs, ["1-invoice.pdf"])
    _resume(env, args, docs, ["1-invoice.pdf"])
    assert _stored(collection) == _whole(docs, [n for n, _, _ in FILES])


def test_ctrl_c_during_a_commit_lets_it_finish(setup):
    docs, args, env, collection = setup
    # the second commit (2-annual-report.pdf) waits inside LanceDB's merge-insert stream
    code, out, err = _interrupted(env, [*args, "--json"], "commit:2", seconds=3)
    assert code == 130, err[-3000:]
    second = str((docs / "2-annual-report.pdf").resolve())
    assert f"interrupted: 2 documents committed in this run (the last: {second})" in err
    report = json.loads(out)
    assert report["interrupted"] and len(report["indexed"]) == 2 and report["indexed"][-1] == second
    assert _stored(collection) == _whole(docs, ["1-invoice.pdf", "2-annual-report.pdf"])
    _resume(env, args, docs, ["1-invoice.pdf", "2-annual-report.pdf"])

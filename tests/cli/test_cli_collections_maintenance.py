"""``retriever collections optimize|verify|info`` through the real process: output, --json,
exit codes (0 fine, 1 damaged, 2 usage, 4 not found, 8 busy) and no tracebacks.

One collection is indexed for real (the samples, default encoder); the others are built in
this process from random records at the place the CLI looks (``collections/<name>/<backend>``),
which needs no model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cli_subprocess import run_cli_home
from repo_paths import SAMPLES
from retriever import plugin_host
from retriever.locking import writer_lock
from retriever.manifest import EncoderIdentity, Manifest
from retriever.types import MultiVector, PageRecord, Region

ENCODER = EncoderIdentity(name="test/random", model_id="random", revision="r1", dim=8,
                          kind="multi")


_cli = run_cli_home  # the CLI as a user runs it (tests/cli_subprocess.py)


def _build(home: Path, name: str, backend: str, pages: dict[str, list[int]],
           commits: int = 1) -> Path:
    """A collection of random pages, written in ``commits`` commits; -> its backend dir."""
    path = home / "collections" / name / backend
    options = {"index_type": "flat"} if backend == "faiss" else {}
    ix = plugin_host.get_registry().create(
        "indexer", backend, path=path, manifest=Manifest(encoder=ENCODER, indexer=backend),
        **options)
    rng = np.random.default_rng(0)
    records = [PageRecord(doc, f"/docs/{doc}.pdf", p, 100, 140,
                          MultiVector.normalized(rng.normal(size=(3, 8)),
                                                 np.full((3, 4), [0.1, 0.1, 0.5, 0.5])),
                          [Region((0.1, 0.1, 0.9, 0.2), f"{doc} page {p}", source="text_layer")])
               for doc, numbers in pages.items() for p in numbers]
    for part in range(commits):
        ix.add(records[part::commits])
    ix.close()
    return path


@pytest.fixture(scope="module")
def indexed_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    out = _cli(["index", str(SAMPLES / "invoice.pdf"), str(SAMPLES / "slide.pdf"), "--no-ocr"],
               home)
    assert out.returncode == 0, out.stderr
    return home


def test_a_real_collection_through_info_optimize_and_verify(indexed_home):
    info = _cli(["collections", "info"], indexed_home)
    assert info.returncode == 0, info.stderr
    assert "version:    " in info.stdout and "fragments:  2" in info.stdout
    assert "on disk:    " in info.stdout and " kB" in info.stdout
    optimized = _cli(["collections", "optimize", "default", "--keep", "0", "--json"],
                     indexed_home)
    assert optimized.returncode == 0, optimized.stderr
    report = json.loads(optimized.stdout)
    assert report["collection"] == "default" and report["backend"] == "lancedb"
    assert (report["fragments_before"], report["fragments_after"]) == (2, 1)
    assert report["versions_removed"] >= 1 and report["versions_after"] == 1
    assert report["pages"] == 2 and report["keep_seconds"] == 0
    verified = _cli(["collections", "verify", "default"], indexed_home)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == ("collection 'default' (lancedb): 2 pages of 2 documents "
                                       "checked, no problem(s)")
    search = _cli(["search", "when is the invoice due?", "-k", "1", "--json"], indexed_home)
    assert search.returncode == 0 and json.loads(search.stdout)["source"].endswith("invoice.pdf")


@pytest.mark.parametrize("backend", ["lancedb", "faiss"])
def test_info_json_and_text_show_storage(backend, tmp_path):
    if backend == "faiss":
        pytest.importorskip("faiss")
    _build(tmp_path, "c", backend, {"a": [1, 2], "b": [1]}, commits=3)
    text = _cli(["collections", "info", "c"], tmp_path)
    assert text.returncode == 0, text.stderr
    if backend == "faiss":
        assert "generation: 3 (1 kept on disk)" in text.stdout and "segments:   3" in text.stdout
    else:
        # versions: the empty table, three commits, and the full-text index built after one
        assert "version:    5 (5 kept on disk)" in text.stdout and "fragments:  3" in text.stdout
    details = json.loads(_cli(["collections", "info", "c", "--json"], tmp_path).stdout)
    storage = details["storage"]
    assert storage["backend"] == backend and storage["pages"] == 3 and storage["bytes"] > 0
    assert storage["fragments"] == 3


@pytest.mark.parametrize("backend", ["lancedb", "faiss"])
def test_optimize_text_report(backend, tmp_path):
    if backend == "faiss":
        pytest.importorskip("faiss")
    _build(tmp_path, "c", backend, {"a": [1, 2, 3], "b": [1]}, commits=4)
    out = _cli(["collections", "optimize", "c"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"optimized collection 'c' ({backend}) in ")
    assert lines[1].startswith("versions:  ") and "--keep 10m" in lines[1]
    assert lines[2] == ("segments:  4 -> 1" if backend == "faiss" else "fragments: 4 -> 1")
    assert lines[3].startswith("on disk:   ")
    assert json.loads(_cli(["collections", "verify", "c", "--json"], tmp_path).stdout)["ok"]


def test_verify_lists_problems_and_exits_1(tmp_path):
    pytest.importorskip("faiss")
    _build(tmp_path, "c", "faiss", {"whole": [1, 2], "gappy": [1, 2, 4, 7]})
    out = _cli(["collections", "verify", "c"], tmp_path)
    assert out.returncode == 1, out.stderr
    assert "6 pages of 2 documents checked, 1 problem(s)" in out.stdout
    assert "  problem: document gappy: pages 1..7 not contiguous (missing 3, 5, 6)" in out.stdout
    assert "to rebuild it: retriever collections delete c" in out.stderr
    report = json.loads(_cli(["collections", "verify", "c", "--json"], tmp_path).stdout)
    assert report["ok"] is False and report["problems"] == [
        "document gappy: pages 1..7 not contiguous (missing 3, 5, 6)"]


def test_a_damaged_collection_is_one_clear_error_everywhere(tmp_path):
    path = _build(tmp_path, "c", "lancedb", {"a": [1, 2], "b": [1]}, commits=3)
    newest = max((path / "pages.lance" / "data").iterdir(), key=lambda f: f.stat().st_mtime_ns)
    newest.unlink()
    for args in (["collections", "info", "c"], ["search", "page", "-c", "c", "--mode", "lexical"],
                 ["collections", "optimize", "c"]):
        out = _cli(args, tmp_path)
        assert out.returncode == 1, (args, out.stderr)
        assert "error: collection 'c' cannot be read: " in out.stderr, out.stderr
        assert "hint: " in out.stderr and "retriever collections delete c" in out.stderr
        assert "Traceback" not in out.stderr
    verified = _cli(["collections", "verify", "c", "--json"], tmp_path)
    assert verified.returncode == 1 and "Traceback" not in verified.stderr
    report = json.loads(verified.stdout)
    assert report["backend"] == "lancedb" and "cannot be read" in report["problems"][0]
    assert _cli(["collections", "delete", "c", "--yes"], tmp_path).returncode == 0


def test_exit_codes_usage_not_found_and_busy(tmp_path):
    _build(tmp_path, "c", "lancedb", {"a": [1]})
    bad_keep = _cli(["collections", "optimize", "c", "--keep", "soon"], tmp_path)
    assert bad_keep.returncode == 2 and "--keep 'soon' is not a duration" in bad_keep.stderr
    for command in ("optimize", "verify"):
        missing = _cli(["collections", command, "nope"], tmp_path)
        assert missing.returncode == 4 and "no collection named 'nope'" in missing.stderr
    with writer_lock(tmp_path, "c", "index"):  # this test process is the writer
        busy = _cli(["collections", "optimize", "c"], tmp_path)
        verify = _cli(["collections", "verify", "c"], tmp_path)  # a reader: never blocked
    assert busy.returncode == 8, busy.stderr
    assert f"error: collection 'c' is being indexed by pid {os.getpid()}" in busy.stderr
    assert verify.returncode == 0, verify.stderr

"""A new user's malformed corpus through the real ``retriever`` process: messages and the
exit codes the README's table promises (0 ok, 1 every file failed, 2 usage, 3 some files
failed, 4 collection not found)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from repo_paths import REPO, SAMPLES


def _cli(args: list[str], home: Path, cwd: Path = REPO,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RETRIEVER_HOME": str(home),
           "RETRIEVER_LOAD_PLUGINS": ""}
    try:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"retriever {' '.join(args)} hung for {timeout} s")


@pytest.fixture(scope="module")
def indexed_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    out = _cli(["index", str(SAMPLES / "invoice.pdf"), "--no-ocr"], home)
    assert out.returncode == 0, out.stderr
    return home


@pytest.mark.parametrize("args", [
    ["index", str(SAMPLES / "invoice.pdf")],
    ["search", "invoice"],
    ["collections", "list"],
    ["collections", "info"],
])
def test_a_data_dir_that_is_a_file_is_a_usage_error(tmp_path, args):
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("oops")
    out = _cli([*args, "--data-dir", str(not_a_dir)], tmp_path / "unused")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert f"the data directory {not_a_dir} is a file" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    env_out = _cli(args, not_a_dir)  # the same through RETRIEVER_HOME
    assert env_out.returncode == 2 and "is a file" in env_out.stderr


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_an_empty_query_is_a_usage_error(indexed_home, query):
    out = _cli(["search", query, "--json"], indexed_home)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "empty" in out.stderr and out.stdout == ""


def test_a_fifo_in_the_corpus_is_one_failure_line_and_the_rest_is_indexed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    os.mkfifo(docs / "pipe.pdf")
    shutil.copy(SAMPLES / "invoice.pdf", docs / "invoice.pdf")
    out = _cli(["index", str(docs), "--no-ocr", "--json"], tmp_path / "home", timeout=180)
    assert out.returncode == 3, out.stderr  # some files failed
    report = json.loads(out.stdout)
    assert report["indexed"] == [str(docs / "invoice.pdf")]
    assert report["failed"] == [{"path": str(docs / "pipe.pdf"), "reason": "not-a-regular-file",
                                 "detail": "a FIFO (named pipe), not a regular file"}]
    text = _cli(["index", str(docs / "pipe.pdf"), "--no-ocr"], tmp_path / "home", timeout=180)
    assert text.returncode == 1  # every file failed
    assert f"failed: {docs / 'pipe.pdf'}: not-a-regular-file" in text.stdout


def test_dash_named_files_index_from_the_cli(tmp_path):
    shutil.copy(SAMPLES / "invoice.pdf", tmp_path / "-f.pdf")
    shutil.copy(SAMPLES / "slide.pdf", tmp_path / "-version.pdf")
    out = _cli(["index", "--no-ocr", "--json", "--", "-f.pdf", "./-version.pdf"],
               tmp_path / "home", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert sorted(report["indexed"]) == [str(tmp_path / "-f.pdf"), str(tmp_path / "-version.pdf")]
    assert report["pages"] == 2


def _bomb(path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_exit_codes_match_the_readme(tmp_path, indexed_home):
    _bomb(tmp_path / "bomb.png")
    only_bad = _cli(["index", str(tmp_path / "bomb.png"), "--no-ocr"], tmp_path / "home")
    assert only_bad.returncode == 1, only_bad.stderr  # every file failed
    assert "too-large" in only_bad.stdout and "over the cap of 64,000,000 pixels" in only_bad.stdout
    missing = _cli(["index", str(tmp_path / "nope.pdf")], tmp_path / "home")
    assert missing.returncode == 1 and "not-found" in missing.stdout
    assert _cli(["search", "x", "-c", "nope"], indexed_home).returncode == 4
    assert _cli(["search", "x", "-k", "0"], indexed_home).returncode == 2
    assert _cli(["search", "invoice", "--json"], indexed_home).returncode == 0
    assert _cli(["collections", "info", "bad/name"], indexed_home).returncode == 2

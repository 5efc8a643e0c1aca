"""A malformed corpus, as a new user's folder holds one: every bad entry is one clear line.

FIFOs, symbolic-link loops, decompression bombs, and file names that look like options,
all real files on disk and real poppler / tesseract / PIL; nothing mocked.
"""

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
from retriever import Retriever
from retriever.errors import BadInputError
from retriever.ingest import discover, open_document

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")


def _run_with_timeout(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, so a hang fails the test instead of the suite."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "RETRIEVER_LOAD_PLUGINS": ""}
    try:
        return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {timeout} s")


# -- FIFOs and other non-regular files ------------------------------------------------------

def test_a_fifo_is_skipped_with_a_reason_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.pdf")
    shutil.copy(SAMPLES / "invoice.pdf", tmp_path / "invoice.pdf")
    files, failures = discover([tmp_path, tmp_path / "pipe.pdf"])
    assert files == [tmp_path / "invoice.pdf"]
    assert [(f.path, f.reason) for f in failures] == [
        (str(tmp_path / "pipe.pdf"), "not-a-regular-file")]
    assert "FIFO" in failures[0].detail


def test_opening_or_hashing_a_fifo_refuses_it_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    out = _run_with_timeout(
        "import sys\n"
        "from retriever.errors import BadInputError\n"
        "from retriever.ingest import file_sha256, open_document\n"
        "from retriever.regions import text_layer_regions\n"
        "for fn in (file_sha256, open_document, text_layer_regions):\n"
        "    try:\n"
        f"        fn({str(fifo)!r})\n"
        "    except BadInputError as exc:\n"
        "        print(exc.reason)\n", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["not-a-regular-file"] * 3


def test_sdk_index_of_a_folder_with_a_fifo_finishes_and_reports_it(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    os.mkfifo(docs / "pipe.pdf")
    shutil.copy(SAMPLES / "invoice.pdf", docs / "invoice.pdf")
    out = _run_with_timeout(
        "import json\n"
        "from retriever import Retriever\n"
        f"r = Retriever('t', data_dir={str(tmp_path / 'home')!r}, ocr=None)\n"
        f"print(json.dumps(r.index([{str(docs)!r}]).to_dict()))\n")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.splitlines()[-1])
    assert report["indexed"] == [str(docs / "invoice.pdf")]
    assert [(f["path"], f["reason"]) for f in report["failed"]] == [
        (str(docs / "pipe.pdf"), "not-a-regular-file")]


# -- symbolic-link loops --------------------------------------------------------------------

def test_a_symlink_loop_is_reported_as_a_loop_not_as_broken(tmp_path: Path) -> None:
    (tmp_path / "self.pdf").symlink_to(tmp_path / "self.pdf")
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    (tmp_path / "gone.pdf").symlink_to(tmp_path / "missing.pdf")
    for paths in ([tmp_path], [tmp_path / n for n in ("self.pdf", "a.png", "b.png", "gone.pdf")]):
        files, failures = discover(paths)
        assert files == []
        by_name = {Path(f.path).name: f for f in failures}
        for name in ("self.pdf", "a.png", "b.png"):
            assert by_name[name].reason == "unreadable", by_name[name]
            assert "symbolic link loop" in by_name[name].detail
        assert by_name["gone.pdf"].reason == "not-found"
        assert by_name["gone.pdf"].detail == "broken symbolic link"
    with pytest.raises(BadInputError, match="symbolic link loop") as info:
        open_document(tmp_path / "self.pdf")
    assert info.value.reason == "unreadable"


# -- one pixel cap, one message -------------------------------------------------------------

def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims a size but has no pixel data: only a header check can pass it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_a_decompression_bomb_gets_the_projects_cap_and_message(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 30_000, 30_000)  # 900 MP: over Pillow's own 179 MP limit too
    with pytest.raises(BadInputError) as info:
        open_document(bomb)
    err = info.value
    assert err.reason == "too-large"
    assert "30000x30000" in err.detail and "900,000,000 pixels" in err.detail
    assert "over the cap of 64,000,000 pixels" in err.detail
    assert "max_pixels" in err.hint
    assert "decompression bomb" not in err.detail.lower()  # Pillow's words, not ours


def test_raising_max_pixels_is_the_one_cap_for_images(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 30_000, 30_000)
    doc = open_document(bomb, max_pixels=10**9, render=False)  # sizes only, nothing decoded
    assert doc.page_sizes == ((30_000, 30_000),)


def test_pdf_and_image_pages_over_the_cap_say_the_same(tmp_path: Path) -> None:
    image = tmp_path / "page.png"
    _png_header_only(image, 1000, 1000)
    with pytest.raises(BadInputError) as png:
        open_document(image, max_pixels=1000)
    with pytest.raises(BadInputError) as pdf:
        open_document(SAMPLES / "invoice.pdf", max_pixels=1000)
    for err in (png.value, pdf.value):
        assert err.reason == "too-large" and "over the cap of 1,000 pixels" in err.detail
        assert err.hint == png.value.hint
    assert "1000x1000 = 1,000,000 pixels" in png.value.detail


def test_sdk_reports_a_bomb_with_the_cap(tmp_path: Path) -> None:
    _png_header_only(tmp_path / "bomb.png", 30_000, 30_000)
    report = Retriever("t", data_dir=tmp_path / "home", ocr=None).index([tmp_path / "bomb.png"])
    assert [(f.reason, "over the cap of 64,000,000 pixels" in f.detail)
            for f in report.failed] == [("too-large", True)]


# -- file names that look like options ------------------------------------------------------

_TOOLS = ("pdfinfo", "pdftoppm", "pdftotext", "tesseract")


def _logging_tools(bin_dir: Path, log: Path) -> None:
    """Wrappers on PATH that record each call's arguments and run the real tool."""
    bin_dir.mkdir()
    for tool in _TOOLS:
        real = shutil.which(tool)
        if real is None:
            pytest.skip(f"{tool} not installed")
        wrapper = bin_dir / tool
        wrapper.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            f"with open({str(log)!r}, 'a') as fh:\n"
            "    fh.write(json.dumps(sys.argv) + '\\n')\n"
            f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n")
        wrapper.chmod(0o755)


def test_file_names_starting_with_a_dash_reach_every_tool_as_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "calls.jsonl"
    _logging_tools(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    docs = tmp_path / "docs"
    docs.mkdir()
    names = {"-f.pdf": "invoice.pdf", "-version.pdf": "slide.pdf",
             "-l.png": "scanned-letter.png", "-v.pdf": "scanned-receipt.pdf"}
    for name, sample in names.items():
        shutil.copy(SAMPLES / sample, docs / name)
    monkeypatch.chdir(docs)  # named as a user types them: `retriever index ./-f.pdf`
    with Retriever("t", data_dir=tmp_path / "home") as r:
        report = r.index([f"./{name}" for name in names])
        assert report.failed == [] and len(report.indexed) == 4
        hits = r.search("bank transfer IBAN", k=1)
    assert Path(hits[0].source).name == "-f.pdf"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert {Path(c[0]).name for c in calls} == set(_TOOLS)
    for call in calls:
        for arg in call[1:]:
            if arg.lower().endswith((".pdf", ".png")):
                assert os.path.isabs(arg), call

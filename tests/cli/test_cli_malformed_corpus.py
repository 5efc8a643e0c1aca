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

from cli_subprocess import run_cli_home
from repo_paths import REPO, SAMPLES


_cli = run_cli_home  # the CLI as a user runs it (tests/cli_subprocess.py)


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


# -- one run over everything a messy folder holds ----------------------------------------------

#: runs a command, then writes the peak RSS (KiB) of its process tree to argv[1]
_PEAK_RSS = ("import resource, subprocess, sys\n"
             "code = subprocess.run(sys.argv[2:]).returncode\n"
             "with open(sys.argv[1], 'w') as f:\n"
             "    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
             "sys.exit(code)\n")
#: the default run's own peak is about 1.4 GiB (torch's import alone is 0.9 GiB); a bomb
#: decoded would add 2.3 GiB (50000 x 50000 one-byte pixels)
_RSS_LIMIT_KIB = 2 * 1024 * 1024


def _real_bomb(path: Path, side: int = 50_000) -> None:
    """A real decompression bomb: a 1-bit PNG of side x side black pixels whose zlib stream
    (~300 KB) inflates to 312 MB, and to 2.5 GB as Pillow's one byte per pixel."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = (b"\x00" * (1 + side // 8)) * 1000  # filter byte + packed pixels, 1000 rows
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(rows) for _ in range(side // 1000)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


def _encrypted_pdf(path: Path) -> None:
    """A PDF that opens only with its user password (no qpdf here: fpdf2, RC4)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner", user_password="user")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="for your eyes only")
    pdf.output(str(path))


def _xref_broken(src: Path, path: Path, *, garbage: bool) -> None:
    """``src`` with its xref table damaged: every offset wrong by 7 bytes (readers rebuild
    the table from the objects), or the table overwritten with junk (they cannot)."""
    import re

    data = src.read_bytes()
    at = data.rfind(b"xref\n0 ")
    head, tail = data[:at], data[at:]
    if garbage:
        end = tail.find(b"trailer")
        tail = (b"xref\n0 21\n" + b"garbage!" * end)[:end] + tail[end:]
    else:
        tail = re.sub(rb"(\d{10})( \d{5} n)",
                      lambda m: b"%010d" % (int(m.group(1)) + 7) + m.group(2), tail)
    path.write_bytes(head + tail)


def test_one_run_over_a_malformed_corpus_names_each_bad_file_and_indexes_the_rest(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    good = {"good-invoice.pdf": SAMPLES / "invoice.pdf", "good-slide.pdf": SAMPLES / "slide.pdf"}
    for name, src in good.items():
        shutil.copy(src, docs / name)
    odd_name = os.fsdecode(os.fsencode(str(docs)) + b"/good-\xff.pdf")  # not UTF-8
    shutil.copy(SAMPLES / "annual-report.pdf", odd_name)
    _xref_broken(SAMPLES / "slide.pdf", docs / "broken-xref.pdf", garbage=False)  # repairable
    bad = {  # name -> the reason its line must give
        "truncated.pdf": "corrupt", "encrypted.pdf": "encrypted", "zero.pdf": "empty",
        "png-named.pdf": "corrupt", "pdf-named.png": "corrupt", "bomb.png": "too-large",
        "loop.pdf": "unreadable", "garbage-xref.pdf": "corrupt",
    }
    data = (SAMPLES / "annual-report.pdf").read_bytes()
    (docs / "truncated.pdf").write_bytes(data[: len(data) // 2])
    _encrypted_pdf(docs / "encrypted.pdf")
    (docs / "zero.pdf").write_bytes(b"")
    shutil.copy(SAMPLES / "scanned-letter.png", docs / "png-named.pdf")
    shutil.copy(SAMPLES / "scanned-receipt.pdf", docs / "pdf-named.png")
    _real_bomb(docs / "bomb.png")
    (docs / "loop.pdf").symlink_to(docs / "loop.pdf")
    _xref_broken(SAMPLES / "slide.pdf", docs / "garbage-xref.pdf", garbage=True)

    home, peak = tmp_path / "home", tmp_path / "peak-rss"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RETRIEVER_HOME": str(home),
           "RETRIEVER_LOAD_PLUGINS": ""}
    try:
        out = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(peak), sys.executable, "-m",
                              "cli", "index", str(docs)], cwd=REPO, env=env,
                             capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.fail("retriever index hung on the malformed corpus")
    stdout, stderr = out.stdout.decode("utf-8"), out.stderr.decode("utf-8")  # valid UTF-8
    assert out.returncode == 3, (out.returncode, stdout, stderr[-3000:])  # some files failed
    assert "Traceback" not in stdout + stderr, stderr[-3000:]
    lines = stdout.splitlines()
    for name, reason in bad.items():
        named = [line for line in lines if f"{docs / name}:" in line]
        assert len(named) == 1, f"{name}: expected one line, got {named}\n{stdout}"
        assert named[0].strip().startswith(f"failed: {docs / name}: {reason}"), named[0]
    assert "4 file(s) indexed (6 pages)" in lines[0] and f"{len(bad)} failed" in lines[0], stdout
    assert len(lines) == 1 + len(bad), stdout  # the summary, then one line per bad file

    from consistency import check_collection

    indexed = [docs / name for name in good] + [Path(odd_name), docs / "broken-xref.pdf"]
    problems = check_collection(home, "default", indexed, search=False)
    assert problems == [], problems
    rss_kib = int(peak.read_text())
    assert rss_kib < _RSS_LIMIT_KIB, f"peak RSS {rss_kib / 1024:.0f} MiB (limit " \
                                     f"{_RSS_LIMIT_KIB / 1024:.0f} MiB)"

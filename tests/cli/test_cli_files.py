"""``retriever delete``, ``index --sync``, moved files, and file names that are not UTF-8."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cli.main import main
from cli_subprocess import plugin_env, run_cli
from repo_paths import SAMPLES



pytestmark = pytest.mark.usefixtures("example_plugin")


@pytest.fixture
def indexed(tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("invoice.pdf", "slide.pdf"):
        shutil.copy(SAMPLES / name, docs / name)
    home = tmp_path / "home"
    assert main(["index", str(docs), "-e", "example/hashing", "--data-dir", str(home)]) == 0
    capsys.readouterr()
    return docs, home


def _json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_delete_by_path_and_doc_id(indexed, capsys):
    docs, home = indexed
    invoice = str((docs / "invoice.pdf").resolve())
    assert main(["delete", str(docs / "invoice.pdf"), "--data-dir", str(home)]) == 0
    out = capsys.readouterr().out
    assert "removed 1 document(s) (1 page(s))" in out and invoice in out
    assert main(["delete", str(docs / "invoice.pdf"), "--data-dir", str(home)]) == 4
    err = capsys.readouterr().err
    assert "nothing in collection 'default' matches" in err and "invoice.pdf" in err
    assert main(["collections", "info", "--data-dir", str(home), "--json"]) == 0
    assert _json(capsys.readouterr().out)["documents"] == 1
    doc_id = next(iter(_docs(home)))
    assert main(["delete", doc_id, "nope.pdf", "--data-dir", str(home), "--json"]) == 0
    report = _json(capsys.readouterr().out)
    assert report["documents"] == [doc_id] and report["unmatched"] == ["nope.pdf"]
    assert main(["delete", "x", "-c", "absent", "--data-dir", str(home)]) == 4


def _docs(home: Path) -> dict:
    from retriever import Retriever

    with Retriever(data_dir=home) as r:
        return r.documents()


def test_index_sync_and_moved_files_in_the_json_report(indexed, capsys):
    docs, home = indexed
    os.remove(docs / "slide.pdf")
    (docs / "sub").mkdir()
    os.rename(docs / "invoice.pdf", docs / "sub" / "bill.pdf")
    assert main(["index", str(docs), "--sync", "--data-dir", str(home), "--json"]) == 0
    report = _json(capsys.readouterr().out)
    assert report["moved"] == [str((docs / "sub" / "bill.pdf").resolve())]
    assert report["removed"] == [str((docs / "slide.pdf").resolve())]
    assert report["indexed"] == [] and report["interrupted"] is False
    assert list(_docs(home).values()) == [[str((docs / "sub" / "bill.pdf").resolve())]]
    shutil.copy(SAMPLES / "slide.pdf", docs / "slide.pdf")
    assert main(["index", str(docs), "--data-dir", str(home)]) == 0
    os.remove(docs / "slide.pdf")
    assert main(["index", str(docs), "--sync", "--data-dir", str(home)]) == 0
    assert "1 removed" in capsys.readouterr().out


@pytest.mark.slow  # six real processes
def test_file_names_that_are_not_utf8_print_and_index(tmp_path):
    """A real process: stdout and stderr are pipes that must get valid UTF-8."""
    docs = os.fsencode(tmp_path / "docs")
    os.mkdir(docs)
    odd, odd_broken = docs + b"/\xff\xfe.pdf", docs + b"/\xfe-broken.pdf"
    shutil.copy(SAMPLES / "invoice.pdf", odd)
    shutil.copy(SAMPLES / "slide.pdf", docs + b"/slide.pdf")
    with open(odd_broken, "wb") as f:
        f.write(b"%PDF-1.4 not really")
    env, home = plugin_env(tmp_path), str(tmp_path / "home")
    done = run_cli(env, "index", docs, "-e", "example/hashing", "--data-dir", home, "--json")
    assert done.returncode == 3, done.stderr.decode()[-3000:]
    report = json.loads(done.stdout.decode("utf-8"))  # valid UTF-8; json escapes the rest
    assert os.fsdecode(odd) in report["indexed"] and len(report["indexed"]) == 2
    assert [(f["path"], f["reason"]) for f in report["failed"]] == [
        (os.fsdecode(odd_broken), "corrupt")]
    again = run_cli(env, "index", docs, "--data-dir", home)
    assert again.returncode == 3
    text = again.stdout.decode("utf-8")
    assert "2 unchanged" in text and "\\xfe-broken.pdf: corrupt" in text
    found = run_cli(env, "search", "IBAN bank transfer", "-k", "1", "--data-dir", home)
    assert found.returncode == 0 and "\\xff\\xfe.pdf  page 1" in found.stdout.decode("utf-8")
    hit = json.loads(run_cli(env, "search", "IBAN bank transfer", "-k", "1", "--data-dir",
                             home, "--json").stdout)
    assert hit["source"] == os.fsdecode(odd) and hit["paths"] == [os.fsdecode(odd)]
    gone = run_cli(env, "delete", odd, "--data-dir", home)
    assert gone.returncode == 0 and "\\xff\\xfe.pdf" in gone.stdout.decode("utf-8")

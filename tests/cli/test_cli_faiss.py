"""End to end on the FAISS backend: `retriever index --indexer faiss`, then search from the
CLI and from the SDK. Real poppler, MiniLM and faiss; queries from samples/queries.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from repo_paths import SAMPLES

pytest.importorskip("faiss")

FILES = ("invoice.pdf", "slide.pdf")
QUERIES = [q for q in json.loads((SAMPLES / "queries.json").read_text()) if q["source"] in FILES]
runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("faiss-home")
    result = runner.invoke(app, ["index", *(str(SAMPLES / f) for f in FILES), "--indexer",
                                 "faiss", "-c", "docs", "--data-dir", str(home), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["failed"] == [] and len(report["indexed"]) == 2
    return home


def test_collection_uses_the_faiss_backend(home):
    assert (home / "collections" / "docs" / "faiss" / "manifest.json").is_file()
    info = json.loads(runner.invoke(app, ["collections", "info", "docs", "--data-dir",
                                          str(home), "--json"]).stdout)
    assert info["backend"] == "faiss" and info["encoder"]["name"] == "text/minilm"
    assert info["documents"] == 2 and info["pages"] >= 2


@pytest.mark.parametrize("case", QUERIES, ids=[q["query"][:40] for q in QUERIES])
def test_cli_search_puts_the_right_page_first(home, case):
    result = runner.invoke(app, ["search", case["query"], "-c", "docs", "--data-dir", str(home),
                                 "-k", "2", "--json"])
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout.splitlines()[0])
    assert (Path(top["source"]).name, top["page"]) == (case["source"], case["page"])
    assert top["regions"]  # grounding works from the vectors and boxes FAISS stored


def test_sdk_reopens_and_searches(home):
    from retriever import Retriever

    case = QUERIES[0]
    with Retriever("docs", data_dir=home) as r:  # the backend is found from the directory
        hits = r.search(case["query"], k=1)
        assert r.info()["backend"] == "faiss"
    assert (Path(hits[0].source).name, hits[0].page) == (case["source"], case["page"])


def test_reindexing_is_a_no_op_and_a_backend_switch_is_refused(home):
    again = runner.invoke(app, ["index", str(SAMPLES / FILES[0]), "-c", "docs", "--indexer",
                                "faiss", "--data-dir", str(home), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["indexed"] == []
    other = runner.invoke(app, ["index", str(SAMPLES / FILES[0]), "-c", "docs", "--indexer",
                                "lancedb", "--data-dir", str(home)])
    assert other.exit_code != 0

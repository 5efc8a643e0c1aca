"""`retriever index --quantization` and `retriever search --rerank`, end to end: real
poppler, MiniLM and LanceDB on two sample PDFs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from repo_paths import SAMPLES

FILES = ("invoice.pdf", "slide.pdf")
QUERIES = [q for q in json.loads((SAMPLES / "queries.json").read_text()) if q["source"] in FILES]
runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("quantized-home")
    result = runner.invoke(app, ["index", *(str(SAMPLES / f) for f in FILES), "-c", "q",
                                 "--quantization", "binary", "--data-dir", str(home), "--json"])
    assert result.exit_code == 0, result.output
    return home


def test_info_reports_the_quantization(home):
    result = runner.invoke(app, ["collections", "info", "q", "--data-dir", str(home), "--json"])
    assert json.loads(result.stdout)["quantization"] == "binary"
    text = runner.invoke(app, ["collections", "info", "q", "--data-dir", str(home)]).stdout
    assert "quantization: binary" in text


@pytest.mark.parametrize("rerank", [None, "1"])
def test_search_with_and_without_rerank_finds_the_page(home, rerank):
    case = QUERIES[0]
    extra = ["--rerank", rerank] if rerank else []
    result = runner.invoke(app, ["search", case["query"], "-c", "q", "--data-dir", str(home),
                                 "-k", "1", "--json", *extra])
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout.splitlines()[0])
    assert (Path(top["source"]).name, top["page"]) == (case["source"], case["page"])
    assert top["regions"]


def test_another_quantization_for_an_existing_collection_is_refused(home):
    result = runner.invoke(app, ["index", str(SAMPLES / FILES[0]), "-c", "q", "--quantization",
                                 "int8", "--data-dir", str(home)])
    assert result.exit_code != 0
    assert "quantization 'binary'" in str(result.exception) + result.output
    bad = runner.invoke(app, ["index", str(SAMPLES / FILES[0]), "-c", "new", "--quantization",
                              "int4", "--data-dir", str(home)])
    assert bad.exit_code != 0

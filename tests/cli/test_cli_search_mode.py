"""``retriever search --mode hybrid|vector|lexical`` (hybrid by default)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app, main

from example_plugin_host import hashing_collection

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("example_plugin")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return hashing_collection(tmp_path_factory.mktemp("mode"), ["annual-report.pdf", "invoice.pdf"])


def _search(home: Path, *args: str):
    return runner.invoke(app, ["search", *args, "-c", "docs", "--data-dir", str(home),
                               "--json"])


@pytest.mark.parametrize("mode", [None, "hybrid", "vector", "lexical"])
def test_every_mode_finds_the_page_with_the_phrase(home, mode):
    result = _search(home, "kiln technician programme", "-k", "2",
                     *(["--mode", mode] if mode else []))
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout.splitlines()[0])
    assert (Path(top["source"]).name, top["page"]) == ("annual-report.pdf", 2)
    assert top["regions"]


def test_lexical_mode_prints_nothing_for_words_nowhere_in_the_collection(home):
    result = _search(home, "zzyzx qwertyuiop", "--mode", "lexical")
    assert result.exit_code == 0 and result.stdout.strip() == ""


def test_an_unknown_mode_is_a_usage_error(home, capsys):
    code = main(["search", "invoice", "--mode", "fuzzy", "-c", "docs", "--data-dir", str(home)])
    assert code == 2 and "unknown search mode 'fuzzy'" in capsys.readouterr().err

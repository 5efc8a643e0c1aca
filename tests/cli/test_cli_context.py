"""``retriever search QUERY --context [--budget N] [--json]``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from retriever.tokens import approx_tokens

from example_plugin_host import hashing_collection

runner = CliRunner()
QUERY = "when is the invoice payment due by bank transfer"


pytestmark = pytest.mark.usefixtures("example_plugin")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return hashing_collection(tmp_path_factory.mktemp("cli-context"), ["invoice.pdf", "annual-report.pdf"], workers=0)


def _run(home: Path, *args: str):
    return runner.invoke(app, ["search", QUERY, "-c", "docs", "--data-dir", str(home),
                               "--context", *args])


def test_json_context_has_the_prompt_and_its_citations(home):
    result = _run(home, "--budget", "80", "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["budget"] == 80 and 0 < data["tokens"] <= 80
    assert data["tokens"] == approx_tokens(data["prompt"])
    assert data["citations"][0]["label"] == "[1]"
    assert Path(data["citations"][0]["source"]).name == "invoice.pdf"


def test_plain_context_prints_the_prompt_on_stdout_and_sources_on_stderr(home):
    result = _run(home, "--budget", "60")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("invoice.pdf, page 1:\n[1] ")
    assert "samples/invoice.pdf page 1" in result.stderr
    assert "of 60 tokens (approx)" in result.stderr


def test_context_crops_go_to_the_crops_directory(home, tmp_path):
    result = _run(home, "--budget", "60", "--json", "--crops", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert all(Path(c["crop_path"]).is_file() for c in data["citations"])

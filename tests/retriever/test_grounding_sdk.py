"""Grounding options through the SDK and the CLI, and regions for single-vector encoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repo_paths import SAMPLES
from retriever import Retriever
from retriever.errors import UsageError
from retriever.grounding import GroundingOptions


DOCS = [SAMPLES / "invoice.pdf", SAMPLES / "annual-report.pdf"]


pytestmark = pytest.mark.usefixtures("example_plugin")


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    with Retriever("g", data_dir=tmp_path, encoder="example/hashing") as r:
        r.index(DOCS)
    return tmp_path


def test_sdk_takes_grounding_options_as_an_object_or_a_dict(home):
    query = "payment is due within 30 days"
    with Retriever("g", data_dir=home) as r:
        lines = r.search(query, k=1, grounding=GroundingOptions(level="line", merge=False))[0]
        assert lines.regions and all(reg.level == "line" for reg in lines.regions)
        two = r.search(query, k=1, grounding={"select": "top_k", "merge": False},
                       max_regions=2)[0]
        assert len(two.regions) == 2
        every = r.search(query, k=1, grounding={"select": "top_k"}, max_regions=0)[0]
        assert len(every.regions) > 5  # 0: no cap
        default = r.search(query, k=1)[0]
        assert 1 <= len(default.regions) <= 5
        assert r.search(query, k=1, regions=False)[0].regions == []
        with pytest.raises(UsageError, match="select"):
            r.search(query, grounding={"select": "best"})
        with pytest.raises(UsageError, match="unknown grounding option"):
            r.search(query, grounding={"level": "line", "typo": 1})


def test_cli_grounding_flags(home):
    from typer.testing import CliRunner

    from cli.main import app, main

    runner = CliRunner()
    base = ["search", "payment is due within 30 days", "--data-dir", str(home), "-c", "g",
            "-k", "1", "--json"]
    result = runner.invoke(app, [*base, "--region-level", "line", "--select", "top_k",
                                 "--max-regions", "3", "--no-merge", "--min-overlap", "0.5"])
    assert result.exit_code == 0, result.output
    hit = json.loads(result.stdout.splitlines()[0])
    assert len(hit["regions"]) == 3
    high = runner.invoke(app, [*base, "--select", "percentile", "--percentile", "90"])
    assert high.exit_code == 0, high.output
    assert main([*base, "--select", "nearest"]) == 2  # a usage error, as the CLI maps it


@pytest.mark.slow
def test_single_vector_encoder_returns_regions(tmp_path):
    """CLIP without patches: one whole-page vector per page, yet every hit has regions."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("open_clip")
    from tiny_vit import build_tiny_clip

    model = build_tiny_clip(tmp_path / "clip")
    with Retriever("v", data_dir=tmp_path, encoder="clip/vit-b-16",
                   encoder_options={"model": str(model)}) as r:
        r.index(DOCS)
        # the default (hybrid) mode ranks them by lexical evidence, where there is some
        assert all(h.regions for h in r.search("when is the payment due?", k=4))
        hits = r.search("when is the payment due?", k=4, mode="vector")
        assert len(hits) == 4
        for hit in hits:
            assert 1 <= len(hit.regions) <= 5
            # no evidence of where: the page's regions in reading order, page's score
            record = r.indexer.get([f"{hit.doc_id}:{hit.page}"])[0]
            first = [reg.text for reg in record.regions][:len(hit.regions)]
            assert [reg.text for reg in hit.regions][0] in " ".join(first)
            assert all(reg.score == pytest.approx(hit.score, abs=1e-5) for reg in hit.regions)

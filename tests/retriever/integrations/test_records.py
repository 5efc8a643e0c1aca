"""Hits flattened into region records (the one conversion the three adapters share), and
the adapters' isolation: importing retriever loads none of the frameworks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from repo_paths import REPO, SAMPLES
from retriever.errors import UsageError
from retriever.ingest import content_hash
from retriever.integrations._records import PAGE_FIELDS, hit_records, search_records
from retriever.types import Hit, RegionHit


def _hit(rank: int, n_regions: int, source: str = "/docs/a.pdf", page: int = 1) -> Hit:
    regions = [RegionHit((0.1, 0.1 * i, 0.9, 0.1 * i + 0.05), f"region {i}", 1.0 - 0.1 * i)
               for i in range(1, n_regions + 1)]
    return Hit(rank=rank, score=2.0 - rank, doc_id=f"doc{rank}", source=source, page=page,
               page_width=100, page_height=200, regions=regions, paths=[source])


class FakeRetriever:
    """Pages with a given number of regions each, in rank order; records what was asked."""

    def __init__(self, regions_per_page: list[int]):
        self.pages = regions_per_page
        self.asked: list[int] = []

    def search(self, query: str, k: int, **options) -> list[Hit]:
        self.asked.append(k)
        return [_hit(rank, n) for rank, n in enumerate(self.pages[:k], start=1)]


def test_a_record_per_region_with_the_hits_fields_and_the_regions():
    hit = _hit(1, 2)
    records = hit_records(hit)
    assert [r.text for r in records] == ["region 1", "region 2"]
    assert [r.id for r in records] == ["doc1:1:1", "doc1:1:2"]
    meta = records[1].metadata
    assert meta == {"doc_id": "doc1", "source": "/docs/a.pdf", "page": 1, "page_width": 100,
                    "page_height": 200, "paths": ["/docs/a.pdf"], "rank": 1,
                    "page_score": 1.0, "region": 2, "level": "paragraph",
                    "bbox": [0.1, 0.2, 0.9, 0.25], "score": 0.8}
    assert records[1].score == pytest.approx(0.8)
    assert records[0].page_metadata() == {name: meta[name] for name in PAGE_FIELDS}
    json.dumps([r.metadata for r in records])
    # the same values as the CLI's JSON line for the hit
    line = hit.to_dict()
    assert all(meta[name] == line[name] for name in ("doc_id", "source", "page", "paths"))
    assert meta["bbox"] == line["regions"][1]["bbox"]


def test_a_page_without_regions_is_one_whole_page_record():
    (record,) = hit_records(_hit(3, 0))
    assert record.text == "" and record.id == "doc3:1:0"
    assert record.metadata["bbox"] == [0.0, 0.0, 1.0, 1.0] and record.metadata["region"] == 0
    assert record.metadata["score"] == record.metadata["page_score"] == -1.0


def test_k_counts_records_from_at_most_k_pages():
    few = FakeRetriever([1, 0, 1, 1, 3, 2])
    records = search_records(few, "q", 5)
    assert [r.id for r in records] == ["doc1:1:1", "doc2:1:0", "doc3:1:1", "doc4:1:1",
                                       "doc5:1:1"]
    assert few.asked == [5]
    regionless = FakeRetriever([0, 0, 0, 0, 0, 4])  # each page still gives a record
    assert [r.metadata["region"] for r in search_records(regionless, "q", 5)] == [0] * 5
    short = FakeRetriever([1, 1])  # the collection holds fewer records than asked for
    assert len(search_records(short, "q", 3)) == 2 and short.asked == [3]
    rich = FakeRetriever([5, 5])
    assert [r.id for r in search_records(rich, "q", 2)] == ["doc1:1:1", "doc1:1:2"]


def test_bad_k_and_a_k_in_search_kwargs_are_usage_errors():
    with pytest.raises(UsageError, match="k must be"):
        search_records(FakeRetriever([1]), "q", 0)
    with pytest.raises(UsageError, match="cannot set k"):
        search_records(FakeRetriever([1]), "q", 1, search_kwargs={"k": 3})


def test_crops_are_saved_for_the_returned_regions_only(tmp_path):
    invoice = SAMPLES / "invoice.pdf"

    class OnInvoice(FakeRetriever):
        def search(self, query: str, k: int, **options) -> list[Hit]:
            hit = _hit(1, 3, source=str(invoice))
            hit.doc_id = content_hash(invoice)
            return [hit]

    records = search_records(OnInvoice([]), "q", 2, crop_dir=tmp_path)
    assert len(records) == 2
    crops = sorted(tmp_path.iterdir())
    assert [str(p) for p in crops] == [r.metadata["crop_path"] for r in records]


def test_importing_retriever_loads_no_framework():
    code = ("import sys, retriever, retriever.integrations, retriever.integrations._records; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'langchain_core', 'llama_index', 'haystack', 'torch'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"

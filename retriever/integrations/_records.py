"""Hits flattened into region records: the one conversion every RAG adapter uses.

A RAG framework wants a flat list of passages, each with its text and a metadata dict; a
``Hit`` is a page holding the regions that answer. A record is one region with its page's
identity beside it, so LangChain, LlamaIndex and Haystack all carry the same fields under
the same names (those of ``Hit.to_dict()``, the CLI's JSON):

``doc_id``, ``source``, ``page`` (1-based), ``page_width``, ``page_height``, ``paths``,
``rank`` and ``page_score`` (the page's), ``region`` (1-based on its hit; 0 for a page that
came back without regions), ``level``, ``bbox`` (normalized ``[x0, y0, x1, y1]``, origin top
left), ``score`` (the region's) and ``crop_path`` when a crop was saved.
"""

from __future__ import annotations

__all__ = ["DEFAULT_K", "PAGE_FIELDS", "RegionRecord", "check_k", "hit_records",
           "open_retriever", "search_records"]

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import DEFAULT_COLLECTION
from ..crops import save_region_crops
from ..errors import UsageError
from ..sdk import Retriever
from ..types import WHOLE_PAGE, Hit

log = logging.getLogger(__name__)

#: records per query unless the caller says otherwise (the SDK's default number of pages)
DEFAULT_K = 5


#: the metadata that describes a record's page rather than its region
PAGE_FIELDS = ("doc_id", "source", "page", "page_width", "page_height", "paths", "rank",
               "page_score")


@dataclass(frozen=True)
class RegionRecord:
    """One returned region: its text, its score and JSON-serialisable metadata."""

    id: str  # "doc_id:page:region": stable across runs, so frameworks can deduplicate
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def page_key(self) -> tuple[str, int]:
        return self.metadata["doc_id"], self.metadata["page"]

    def page_metadata(self) -> dict[str, Any]:
        """The page's fields alone (for a node or document that stands for the page)."""
        return {name: self.metadata[name] for name in PAGE_FIELDS}


def hit_records(hit: Hit) -> list[RegionRecord]:
    """A hit's regions as records, best first; a hit without regions is one whole-page
    record with empty text, so no returned page is silently dropped."""
    page = {
        "doc_id": hit.doc_id,
        "source": hit.source,
        "page": hit.page,
        "page_width": hit.page_width,
        "page_height": hit.page_height,
        "paths": list(hit.paths or [hit.source]),
        "rank": hit.rank,
        "page_score": round(float(hit.score), 6),
    }
    if not hit.regions:
        meta = {**page, "region": 0, "level": "page", "bbox": list(WHOLE_PAGE),
                "score": page["page_score"]}
        return [RegionRecord(f"{hit.doc_id}:{hit.page}:0", "", float(hit.score), meta)]
    records = []
    for index, region in enumerate(hit.regions, start=1):
        fields = region.to_dict()  # bbox, text, score (rounded as in the JSON), crop_path
        text = fields.pop("text")
        meta = {**page, "region": index, "level": region.level, **fields}
        records.append(RegionRecord(f"{hit.doc_id}:{hit.page}:{index}", text,
                                    float(region.score), meta))
    return records


def open_retriever(retriever: Retriever | None, collection: str | None,
                   data_dir: str | Path | None) -> Retriever:
    """The caller's ``Retriever``, or one over ``collection`` in ``data_dir``."""
    if retriever is not None:
        if collection is not None or data_dir is not None:
            raise UsageError("give either retriever= or collection=/data_dir=, not both",
                             hint="an existing Retriever already names its collection")
        return retriever
    return Retriever(collection or DEFAULT_COLLECTION, data_dir=data_dir)


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(f"k must be a whole number of at least 1, got {k!r}")
    return k


def search_records(retriever: Retriever, query: str, k: int, *,
                   search_kwargs: Mapping[str, Any] | None = None,
                   crop_dir: str | Path | None = None) -> list[RegionRecord]:
    """The best ``k`` regions for ``query``: pages in rank order, each page's regions in
    the grounding's order (best first).

    ``k`` counts records, not pages, because that is what a framework's ``k`` / ``top_k``
    means to its users (``k`` passages in the prompt). ``search_kwargs`` go to
    ``Retriever.search`` (``mode``, ``grounding``, ``max_regions``, ...). With ``crop_dir``
    the returned regions are cropped there and carry ``crop_path``.
    """
    check_k(k)
    options = dict(search_kwargs or {})
    if "k" in options:
        raise UsageError("search_kwargs cannot set k", hint="pass k= to the adapter itself")
    # every hit gives at least one record (a page without regions gives a whole-page
    # one), so k pages always hold k records, or the collection has fewer
    hits = retriever.search(query, k, **options)
    records = [record for hit in hits for record in hit_records(hit)][:k]
    if crop_dir is not None and records:
        records = _with_crops(hits, records, crop_dir)
    return records


def _with_crops(hits: list[Hit], records: list[RegionRecord],
                crop_dir: str | Path) -> list[RegionRecord]:
    """Crop only the regions that made the cut, then rebuild their records."""
    used: dict[tuple[str, int], int] = {}
    for record in records:
        used[record.page_key] = max(used.get(record.page_key, 0), record.metadata["region"])
    # the trimmed hits share their RegionHit objects with ``hits``: crop paths land there
    trimmed = [dataclasses.replace(hit, regions=hit.regions[:used[(hit.doc_id, hit.page)]])
               for hit in hits if (hit.doc_id, hit.page) in used]
    for warning in save_region_crops(trimmed, crop_dir):
        log.warning("%s", warning)
    rebuilt = [record for hit in trimmed for record in hit_records(hit)]
    return rebuilt[:len(records)]

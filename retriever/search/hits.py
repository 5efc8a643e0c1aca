"""Queries to hits on a collection: the indexer's search-time options checked, pages
ranked (``hybrid.rank``), each returned page's record fetched once and grounded into the
regions that answer."""

from __future__ import annotations

__all__ = ["search_hits"]

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import UsageError
from ..filenames import existing_first
from ..grounding import GroundingOptions, ground
from ..plugin_host import get_registry
from ..protocols import Encoder, Indexer
from ..types import Hit
from .hybrid import Mode, grounding_for
from .hybrid import rank as rank_pages


def checked_search_options(indexer: Indexer, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` parsed against the backend's declared search options; a UsageError for
    an option its ``search`` does not take (an indexer that declares none)."""
    options = get_registry().get("indexer", indexer.manifest.indexer).search_options(given)
    takes = inspect.signature(indexer.search).parameters
    missing = sorted(set(options) - set(takes))
    if missing:  # an indexer whose spec declares no options: its signature decides
        raise UsageError(f"the {indexer.manifest.indexer} backend does not take "
                         f"{', '.join(missing)}")
    return options


def search_hits(indexer: Indexer, encoder: Callable[[], Encoder], queries: Sequence[str],
                k: int, mode: Mode, ground_options: GroundingOptions, *, regions: bool,
                search_options: Mapping[str, Any]) -> list[list[Hit]]:
    """Top ``k`` hits per query. ``encoder`` is called only where vectors are needed (not
    in lexical mode, which loads no model); ``ground_options.aggregate`` unset takes the
    encoder's ``region_aggregate`` (else "mean")."""
    options = checked_search_options(indexer, search_options)  # before any slow encoding
    if mode != "lexical":
        ground_options = ground_options.with_(aggregate=ground_options.aggregate or getattr(
            encoder(), "region_aggregate", "mean"))
    ground_options = grounding_for(ground_options, mode)
    results: list[list[Hit]] = []
    for ranking in rank_pages(indexer, encoder, queries, k, mode, options):
        qv, scored = ranking.query_vector, ranking.pages
        records = indexer.get([s.key for s in scored])
        hits = []
        for rank, (s, record) in enumerate(zip(scored, records), start=1):
            found = ground(qv, record.embedding, record.regions, ground_options,
                           lexical=s.lexical) if regions else []
            paths = list(record.paths or (record.source,))
            hits.append(Hit(rank=rank, score=s.score, doc_id=record.doc_id,
                            # a copy that still exists, if the first path is gone
                            source=existing_first(paths) or record.source,
                            page=record.page_number,
                            page_width=record.width, page_height=record.height,
                            regions=found, paths=paths))
        results.append(hits)
    return results

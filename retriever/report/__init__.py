"""The HTML report of a search: every hit's page with its answering regions drawn on it.

``render_report`` writes one self-contained file (images inside as data URIs, no script)
from hits; ``report_for`` is what ``Retriever.render_html`` runs: it takes the DPI and
pixel cap from the collection and, for ``heatmap``, each page's patch relevance from the
grounding code (``retriever.grounding.patch_relevance``) over the stored vectors.

Modules: ``views`` (boxes in percent, notices), ``images`` (data URIs), ``heatmap`` (the
overlay), ``render`` (Jinja2), ``templates/`` (the HTML and CSS).
"""

from __future__ import annotations

__all__ = ["ReportResult", "render_report", "report_for"]

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import RetrieverError, UsageError
from .render import ReportResult, render_report

if TYPE_CHECKING:
    from ..grounding import PatchRelevance
    from ..sdk import Retriever
    from ..types import Hit


def _heat(retriever: Retriever, hits: Sequence[Hit], query: str) -> dict[str, PatchRelevance]:
    """Per hit key, the relevance of each stored vector of its page to ``query``: the same
    evidence grounding spread onto the regions, from the same stored vectors."""
    from ..grounding import patch_relevance

    query_vector = retriever.encoder.encode_queries([query])[0]
    keys = list(dict.fromkeys(f"{h.doc_id}:{h.page}" for h in hits))
    heat: dict[str, PatchRelevance] = {}
    for key in keys:
        try:
            records = retriever.indexer.get([key])
        except RetrieverError:  # deleted since the search: no heatmap for that page
            continue
        if records:
            heat[key] = patch_relevance(query_vector, records[0].embedding)
    return heat


def report_for(retriever: Retriever, hits: Sequence[Hit], path: str | os.PathLike[str], *,
               heatmap: bool = False, query: str | None = None) -> ReportResult:
    """The report of ``hits`` from ``retriever``'s collection; see ``Retriever.render_html``."""
    if heatmap and not (query and query.strip()):
        raise UsageError("a heatmap needs the query the hits answer",
                         hint="render_html(hits, path, heatmap=True, query=...)")
    from ..ingest import DEFAULT_DPI

    # the DPI the collection's pages were rasterized at, so boxes land on the same pixels;
    # making the encoder is cheap (models load on first encode)
    dpi = int(getattr(retriever.encoder, "dpi", None) or DEFAULT_DPI)
    manifest = retriever.indexer.manifest
    heat = _heat(retriever, hits, query) if heatmap and hits else None  # type: ignore[arg-type]
    details = {"collection": retriever.collection, "encoder": manifest.encoder.name,
               "pages rendered at": f"{dpi} dpi"}
    return render_report(hits, path, dpi=dpi, max_pixels=retriever.max_pixels,
                         query=query, heat=heat, heatmap=heatmap, details=details)

"""Hits -> one self-contained HTML file: page images, region boxes, text and heatmaps.

Jinja2 renders it with autoescaping on, so every piece of document text (region text, file
names, the query) reaches the page as text, never as markup.
"""

from __future__ import annotations

__all__ = ["ReportResult", "environment", "render_report"]

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..crops import PageUnavailable, render_hit_page
from ..errors import MissingDependencyError
from ..ingest.document import DEFAULT_MAX_PIXELS
from ..types import Hit
from .images import data_uri
from .views import HitView, changed_notice, hit_view

if TYPE_CHECKING:
    from ..grounding import PatchRelevance

_TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class ReportResult:
    """Where the report went, and a line for each hit whose page is not shown."""

    path: Path
    notices: list[str] = field(default_factory=list)


def environment():  # -> jinja2.Environment (imported here: only reports need jinja2)
    """The Jinja2 environment over ``templates/``: autoescaping on, undefined names an
    error. The server's search page renders its template from the same one."""
    try:
        import jinja2
    except ImportError as exc:
        raise MissingDependencyError("HTML reports need jinja2",
                                     hint="pip install jinja2") from exc
    return jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True)


def _view(hit: Hit, *, dpi: int, max_pixels: int, heat: PatchRelevance | None,
          heatmap: bool, hashes: dict[str, str]) -> HitView:
    from .heatmap import paint_heatmap

    view = hit_view(hit)
    try:
        image, used = render_hit_page(hit, dpi=dpi, max_pixels=max_pixels, hashes=hashes)
    except PageUnavailable as exc:
        view.notice = changed_notice(hit, exc.reason, exc.message)
        view.warning = f"{exc.message}; its page is not drawn in the report"
        return view
    view.source = used
    view.image, view.image_size = data_uri(image), image.size
    if heatmap:
        overlay = paint_heatmap(heat, image.size) if heat is not None else None
        if overlay is not None:
            view.heatmap = data_uri(overlay, keep_alpha=True)
        else:
            view.heat_note = ("No heatmap: this collection's encoder keeps no vectors with "
                              "a place on the page (only whole-page ones).")
    return view


def render_report(
    hits: Sequence[Hit],
    path: str | os.PathLike[str],
    *,
    dpi: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    query: str | None = None,
    heat: Mapping[str, PatchRelevance] | None = None,
    heatmap: bool = False,
    details: Mapping[str, str] | None = None,
) -> ReportResult:
    """Write the report of ``hits`` to ``path``.

    ``dpi`` and ``max_pixels``: the collection's, so pages are the pixels it indexed.
    ``heat``: per hit key ``doc_id:page``, the patch relevance to overlay when ``heatmap``.
    ``details``: a few name -> value lines for the header (collection, encoder).
    """
    hashes: dict[str, str] = {}  # a document hit on several pages is hashed once
    views = [_view(hit, dpi=dpi, max_pixels=max_pixels, heatmap=heatmap, hashes=hashes,
                   heat=(heat or {}).get(f"{hit.doc_id}:{hit.page}")) for hit in hits]
    template = environment().get_template("report.html.j2")
    html = template.render(query=query, hits=views, heatmap=heatmap,
                           details=dict(details or {}),
                           max_boxes=max((len(v.boxes) for v in views), default=0))
    out = Path(path)
    if out.parent != Path():
        out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)  # a reader (a browser reloading) never sees half a report
    notices = [f"hit {v.rank}: {v.warning}" for v in views if v.warning]
    return ReportResult(out, notices)

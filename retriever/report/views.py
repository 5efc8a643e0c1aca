"""What the template shows, computed from hits: boxes in percent, notices, captions.

Kept apart from rendering so the geometry (normalized box -> CSS percentages of the page
image) is plain data a test can check, and the template only lays it out. The report
(``render``) and the server's search page (``retriever.server.page``) both build their
views with ``hit_view`` and lay them out with the same template macros (``_hit.html.j2``);
they differ only in where the page image comes from (a data URI or a URL).
"""

from __future__ import annotations

__all__ = ["BoxView", "HitView", "box_view", "changed_notice", "hit_view"]

import os
from dataclasses import dataclass, field

from ..types import Hit, RegionHit


@dataclass(frozen=True)
class BoxView:
    """One region of a hit: where its box goes on the page and what it says."""

    number: int  # 1-based, best first: the label on the box and in the text beside it
    score: float
    bbox: tuple[float, float, float, float]  # normalized (x0, y0, x1, y1)
    text: str
    level: str

    @property
    def style(self) -> str:
        """CSS placing the box over the page image: percentages of the image, so the box
        scales with it however wide the browser lays the image out."""
        x0, y0, x1, y1 = self.bbox
        return (f"left:{x0 * 100:.4f}%;top:{y0 * 100:.4f}%;"
                f"width:{(x1 - x0) * 100:.4f}%;height:{(y1 - y0) * 100:.4f}%")

    @property
    def data_bbox(self) -> str:
        return ",".join(f"{v:.6f}" for v in self.bbox)

    @property
    def score_text(self) -> str:
        return f"{self.score:.3f}"


@dataclass
class HitView:
    """One hit as the report shows it; ``image`` None means the page is not shown."""

    rank: int
    score: float
    source: str
    page: int
    doc_id: str
    boxes: list[BoxView]
    image: str | None = None  # the page: a data URI (report) or a URL (server page)
    image_size: tuple[int, int] | None = None  # pixels, as rendered at the collection's DPI
    heatmap: str | None = None  # data URI of the RGBA overlay
    heat_note: str | None = None  # why a heatmap asked for is not there
    notice: str | None = None  # why the page is not shown (source changed or gone)
    warning: str | None = None  # the same in one line, for the command line
    paths: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"hit-{self.rank}"

    @property
    def name(self) -> str:
        return os.path.basename(self.source) or self.source

    @property
    def shown_path(self) -> str:
        """The source as a reader wants it: relative to where the report was made when it
        lies below it (``samples/invoice.pdf``), else absolute."""
        try:
            relative = os.path.relpath(self.source)
        except ValueError:  # another drive (Windows)
            return self.source
        return self.source if relative.startswith(os.pardir) else relative

    @property
    def alt(self) -> str:
        drawn = f", {len(self.boxes)} answering regions outlined" if self.boxes else ""
        return f"Page {self.page} of {self.name}{drawn}"


def hit_view(hit: Hit) -> HitView:
    """The view of ``hit`` without its picture: boxes numbered best first from 1."""
    return HitView(rank=hit.rank, score=float(hit.score), source=hit.source, page=hit.page,
                   doc_id=hit.doc_id, boxes=[box_view(i, r) for i, r in
                                             enumerate(hit.regions, start=1)],
                   paths=list(hit.paths))


def box_view(number: int, region: RegionHit) -> BoxView:
    return BoxView(number, float(region.score), tuple(float(v) for v in region.bbox),
                   region.text, region.level)


def changed_notice(hit: Hit, reason: str, message: str) -> str:
    """The visible notice for a page that cannot be shown, saying what to do about it."""
    if reason == "changed":
        what = "has changed since it was indexed"
    elif reason == "not-found":
        what = "is gone"
    else:
        what = f"cannot be read ({message})"
    return (f"The source file {hit.source} {what}: its page is not shown and its regions "
            f"are not drawn (their boxes belong to the indexed version). The region text "
            f"below is as indexed; index the file again to refresh it.")

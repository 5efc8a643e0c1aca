"""Region crops: the pixels of each returned region, saved as PNG for a person or an LLM.

Pages are rendered again from their source file (once per hit), only for the hits asked
for; a source that changed since it was indexed is skipped rather than cropped wrongly.
``render_hit_page`` is that one way back from a hit to its page's pixels; the HTML report
(``retriever.report``) draws on the same pixels.
"""

from __future__ import annotations

__all__ = ["PageUnavailable", "render_page", "render_hit_page", "save_region_crops",
           "save_page_image"]

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadInputError
from .ingest import content_hash, open_document
from .ingest.document import DEFAULT_MAX_PIXELS
from .pageimages import crop_box
from .types import Hit

if TYPE_CHECKING:
    from PIL.Image import Image


class PageUnavailable(Exception):
    """A hit's page cannot be shown: its source ``changed`` since it was indexed, or is
    gone or unreadable (``reason`` is then the ``BadInputError`` reason, e.g. not-found)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


def render_hit_page(hit: Hit, *, dpi: int = 150, max_pixels: int = DEFAULT_MAX_PIXELS,
                    hashes: dict[str, str] | None = None) -> tuple[Image, str]:
    """The hit's page rendered again from a source file at ``dpi``, and that file's path
    (``render_page`` over every path the document is recorded at, ``source`` first)."""
    return render_page([hit.source, *hit.paths], hit.doc_id, hit.page, dpi=dpi,
                       max_pixels=max_pixels, hashes=hashes)


def render_page(paths: Sequence[str], doc_id: str, page_number: int, *, dpi: int = 150,
                max_pixels: int = DEFAULT_MAX_PIXELS,
                hashes: dict[str, str] | None = None) -> tuple[Image, str]:
    """Page ``page_number`` of document ``doc_id`` rendered again from the first of
    ``paths`` that still holds it, at ``dpi``, and that file's path.

    A file counts only while its content still hashes to ``doc_id`` (boxes drawn on
    another version of a page would point at the wrong words). Give the collection's
    ``dpi`` and ``max_pixels`` to get the very pixels it indexed. ``hashes`` (path ->
    content hash), shared across the hits of one call, hashes a document with several hit
    pages once. Raises ``PageUnavailable``.
    """
    first: PageUnavailable | None = None
    for name in dict.fromkeys(paths):
        source = Path(name)
        try:
            digest = hashes.get(name) if hashes is not None else None
            if digest is None:
                digest = content_hash(source)
                if hashes is not None:
                    hashes[name] = digest
            if digest != doc_id:
                raise PageUnavailable(f"{source}: changed since it was indexed", "changed")
            page = open_document(source, dpi=dpi, max_pixels=max_pixels,
                                 doc_id=doc_id).page(page_number)
        except BadInputError as exc:
            first = first or PageUnavailable(exc.message, exc.reason)
            continue
        except PageUnavailable as exc:
            first = first or exc
            continue
        if page.image is None:  # pragma: no cover - open_document renders by default
            first = first or PageUnavailable(f"{source}: page {page_number} has no image",
                                             "no-image")
            continue
        return page.image, str(source)
    if first is None:
        raise PageUnavailable(f"document {doc_id}: no path recorded", "not-found")
    raise first


def save_region_crops(hits: Sequence[Hit], out_dir: str | Path, *, dpi: int = 150) -> list[str]:
    """Save a PNG for every region of every hit and set ``RegionHit.crop_path``.

    Returns one warning per hit whose page could not be cropped (source missing or changed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    hashes: dict[str, str] = {}
    for hit in hits:
        if not hit.regions:
            continue
        try:
            image, _ = render_hit_page(hit, dpi=dpi, hashes=hashes)
        except PageUnavailable as exc:
            warnings.append(f"{exc.message}; no crops")
            continue
        for index, region in enumerate(hit.regions, start=1):
            box = crop_box(region.bbox, *image.size)
            path = out / f"{hit.doc_id}-p{hit.page}-r{index}.png"
            image.crop(box).save(path)
            region.crop_path = str(path)
    return warnings


def save_page_image(paths: Sequence[str], doc_id: str, page: int, out_dir: str | Path, *,
                    dpi: int = 150) -> Path:
    """The whole page as a PNG in ``out_dir``, rendered once and reused afterwards.

    The file is named by the document's content hash, page and DPI, so a file already there
    is this very page and is returned without opening the source. Raises PageUnavailable
    when no path still holds the document as it was indexed.
    """
    out = Path(out_dir)
    path = out / f"{doc_id}-p{page}-{dpi}dpi.png"
    if path.is_file():
        return path
    image, _ = render_page(paths, doc_id, page, dpi=dpi)
    out.mkdir(parents=True, exist_ok=True)
    # written under another name and renamed: a concurrent reader never sees half a PNG
    tmp = out / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

"""Region crops and page images: pixels of returned hits, saved as PNG for a person or an LLM.

Pages are rendered again from their source file (once per hit), only for the hits asked
for; a source that changed since it was indexed is skipped rather than cropped wrongly.
"""

from __future__ import annotations

__all__ = ["save_region_crops", "save_page_image"]

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadInputError
from .ingest import content_hash, open_document
from .types import Hit

if TYPE_CHECKING:
    from PIL.Image import Image

_MARGIN = 0.004  # a little context around the box, in page fractions


def _render_page(source: Path, doc_id: str, page: int, dpi: int) -> Image | None:
    """The page as indexed, rendered again; BadInputError when its source is gone or changed."""
    if content_hash(source) != doc_id:
        raise BadInputError(str(source), "changed", "since it was indexed")
    return open_document(source, dpi=dpi, doc_id=doc_id).page(page).image


def save_region_crops(hits: Sequence[Hit], out_dir: str | Path, *, dpi: int = 150) -> list[str]:
    """Save a PNG for every region of every hit and set ``RegionHit.crop_path``.

    Returns one warning per hit whose page could not be cropped (source missing or changed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    for hit in hits:
        if not hit.regions:
            continue
        source = Path(hit.source)
        try:
            image = _render_page(source, hit.doc_id, hit.page, dpi)
        except BadInputError as exc:
            if exc.reason == "changed":
                warnings.append(f"{source}: changed since it was indexed; no crops")
            else:
                warnings.append(f"{exc.message}; no crops")
            continue
        if image is None:
            continue
        width, height = image.size
        for index, region in enumerate(hit.regions, start=1):
            x0, y0, x1, y1 = region.bbox
            box = (int(max(0.0, x0 - _MARGIN) * width), int(max(0.0, y0 - _MARGIN) * height),
                   int(min(1.0, x1 + _MARGIN) * width + 0.999),
                   int(min(1.0, y1 + _MARGIN) * height + 0.999))
            path = out / f"{hit.doc_id}-p{hit.page}-r{index}.png"
            image.crop(box).save(path)
            region.crop_path = str(path)
    return warnings


def save_page_image(source: str | Path, doc_id: str, page: int, out_dir: str | Path, *,
                    dpi: int = 150) -> Path:
    """The whole page as a PNG in ``out_dir``, rendered once and reused afterwards.

    The file is named by the document's content hash, page and DPI, so a file already there
    is this very page and is returned without opening the source. Raises BadInputError when
    the source is gone or changed since it was indexed.
    """
    out = Path(out_dir)
    path = out / f"{doc_id}-p{page}-{dpi}dpi.png"
    if path.is_file():
        return path
    image = _render_page(Path(source), doc_id, page, dpi)
    if image is None:
        raise BadInputError(str(source), "unreadable", f"page {page} has no image")
    out.mkdir(parents=True, exist_ok=True)
    # written under another name and renamed: a concurrent reader never sees half a PNG
    tmp = out / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

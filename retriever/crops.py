"""Region crops: the pixels of each returned region, saved as PNG for a person or an LLM.

Pages are rendered again from their source file (once per hit), only for the hits asked
for; a source that changed since it was indexed is skipped rather than cropped wrongly.
"""

from __future__ import annotations

__all__ = ["save_region_crops"]

from collections.abc import Sequence
from pathlib import Path

from .errors import BadInputError
from .ingest import content_hash, open_document
from .types import Hit

_MARGIN = 0.004  # a little context around the box, in page fractions


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
            if content_hash(source) != hit.doc_id:
                warnings.append(f"{source}: changed since it was indexed; no crops")
                continue
            page = open_document(source, dpi=dpi, doc_id=hit.doc_id).page(hit.page)
        except BadInputError as exc:
            warnings.append(f"{exc.message}; no crops")
            continue
        image = page.image
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

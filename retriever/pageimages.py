"""Page and region pictures rendered from an indexed document, as PIL images or PNG bytes.

Used by ``Retriever.context`` (crops for an LLM) and the HTTP server (images by opaque id).
The source is rendered again (nothing is cached on disk) and only when its content still
hashes to the document's id: a file that changed since it was indexed would otherwise give
a picture of something else, and a file swapped for a link to another one is refused the
same way.
"""

from __future__ import annotations

__all__ = ["PageRenderer", "crop_box", "png_bytes"]

import io
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import RetrieverError
from .types import BBox

if TYPE_CHECKING:
    from PIL.Image import Image

_MARGIN = 0.004  # a little context around a region's box, in page fractions


def crop_box(bbox: BBox, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel box of a normalized ``bbox`` on a ``width`` x ``height`` image, with margin."""
    x0, y0, x1, y1 = bbox
    left = int(max(0.0, x0 - _MARGIN) * width)
    top = int(max(0.0, y0 - _MARGIN) * height)
    right = max(left + 1, int(min(1.0, x1 + _MARGIN) * width + 0.999))
    bottom = max(top + 1, int(min(1.0, y1 + _MARGIN) * height + 0.999))
    return left, top, min(right, width), min(bottom, height)


def png_bytes(image: Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class PageRenderer:
    """Renders pages of indexed documents, each (doc_id, page) once per renderer.

    ``render`` returns None (and records a warning) when the page cannot be shown: the
    source is gone, changed since it was indexed, or unreadable. One renderer serves one
    request or one ``context`` call, so its memory goes with it.
    """

    def __init__(self, dpi: int = 150) -> None:
        self.dpi = dpi
        self.warnings: list[str] = []
        self._pages: dict[tuple[str, int], Image | None] = {}

    def render(self, source: str, doc_id: str, page: int) -> Image | None:
        key = (doc_id, page)
        if key not in self._pages:
            self._pages[key] = self._render(Path(source), doc_id, page)
        return self._pages[key]

    def _render(self, source: Path, doc_id: str, page: int) -> Image | None:
        from .crops import PageUnavailable, render_page

        try:
            return render_page([str(source)], doc_id, page, dpi=self.dpi)[0]
        except PageUnavailable as exc:  # gone, changed since indexed, or unreadable
            self.warnings.append(f"{exc.message}; no image")
        except RetrieverError as exc:  # a page number past the end
            self.warnings.append(f"{exc.message}; no image")
        except OSError as exc:
            self.warnings.append(f"{source}: page {page}: {exc}; no image")
        return None

    def crop(self, source: str, doc_id: str, page: int, bbox: BBox) -> Image | None:
        image = self.render(source, doc_id, page)
        if image is None:
            return None
        return image.crop(crop_box(bbox, *image.size))

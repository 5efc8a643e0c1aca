"""``GET /images/{image_id}``: a page or region picture, named by an opaque id only.

The id (``ids.ImageIds``) names a collection, a document, a page and optionally a box;
the file is the one the collection recorded for that document, never a path from the
client. A recorded path inside ``DATA_DIR/uploads`` that resolves outside it (a link
planted there) is not read, and a source whose content no longer hashes to the document's
id is not rendered (``pageimages``). Every refusal is the same 404: the client learns
nothing about files. The answer is always a PNG rendered from the page, never the file's
own bytes.
"""

from __future__ import annotations

__all__ = ["build_image_router", "page_available", "render_crop"]

from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Response

from ..pageimages import PageRenderer, png_bytes
from ..types import BBox

if TYPE_CHECKING:
    from ..sdk import Retriever
    from .state import ServerState

_NOT_FOUND = "no such image"


def _readable(state: ServerState, paths: list[str]) -> list[str]:
    """The paths the server may read: an upload only while it is still inside uploads."""
    return [p for p in paths if not state.uploads.is_upload(p) or state.uploads.inside(p)]


def _sources(state: ServerState, retriever: Retriever, doc_id: str, page: int) -> list[str]:
    try:
        record = retriever.indexer.get([f"{doc_id}:{page}"])[0]
    except Exception:  # noqa: BLE001 - unknown page or document: one 404 for all
        return []
    return _readable(state, list(record.paths or (record.source,)))


def page_available(state: ServerState, doc_id: str, paths: list[str],
                   hashes: dict[str, str]) -> bool:
    """Whether ``/images`` can show this document's pages: one of ``paths`` (a hit's) may
    be read and still hashes to ``doc_id``. The search page asks before it draws boxes
    over an image that would not come. ``hashes`` (path -> hash) is shared by one page's
    hits, so a document hit on several pages is hashed once."""
    from ..ingest import content_hash

    for path in _readable(state, list(dict.fromkeys(paths))):
        if path not in hashes:
            try:
                hashes[path] = content_hash(path)
            except Exception:  # noqa: BLE001 - gone or unreadable: try the next path
                continue
        if hashes[path] == doc_id:
            return True
    return False


def render_crop(state: ServerState, retriever: Retriever, doc_id: str, page: int,
                bbox: BBox | None) -> bytes | None:
    """PNG of the page (``bbox`` None) or of the region; None when it cannot be shown."""
    renderer = PageRenderer(dpi=state.image_dpi)
    for source in _sources(state, retriever, doc_id, page):
        image = (renderer.render(source, doc_id, page) if bbox is None
                 else renderer.crop(source, doc_id, page, bbox))
        if image is not None:
            return png_bytes(image)
    return None


def build_image_router(state: ServerState) -> APIRouter:
    router = APIRouter()

    @router.get("/images/{image_id}", tags=["images"], response_class=Response,
                responses={200: {"content": {"image/png": {}},
                                 "description": "The page or region, as PNG"},
                           404: {"description": "Unknown id, or the source is gone"}})
    def image(image_id: str) -> Response:
        """A page or region image by the ``image_id`` of a hit, region or citation."""
        ref = state.ids.parse(image_id)
        if ref is None:
            raise HTTPException(404, detail=_NOT_FOUND)
        try:
            retriever = state.collections.get(ref.collection).warm(encoder=False)
        except Exception:  # noqa: BLE001 - a collection deleted since: still just a 404
            raise HTTPException(404, detail=_NOT_FOUND) from None
        png = render_crop(state, retriever, ref.doc_id, ref.page, ref.bbox)
        if png is None:
            raise HTTPException(404, detail=_NOT_FOUND)
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=600",
                                 "X-Content-Type-Options": "nosniff"})

    return router

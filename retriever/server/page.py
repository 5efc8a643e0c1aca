"""``GET /``: the search page, an HTML form and its results rendered on the server.

A plain GET form (query, collection, pages) with no script: ``/?q=...&collection=...``
renders each hit with its page image and the answering regions outlined on it, through
the HTML report's own views and template macros (``retriever.report.views.hit_view``,
``_hit.html.j2``), so the box geometry exists once. The report embeds its images; here a
page image is the server's ``/images/{id}`` route by opaque id, never a path.

With an API key the page needs it like every other route: as a header (``curl``), or as
the session cookie that signing in on the page sets (``POST /session``, see ``auth``).
Every failure is an HTML page with the form above it (404 for an unknown collection, 401
for a missing key), never a traceback; the response forbids scripts outright
(Content-Security-Policy), a second line behind the template's autoescaping.
"""

from __future__ import annotations

__all__ = ["DEFAULT_K", "MAX_K", "build_page_router"]

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..errors import CollectionNotFoundError, RetrieverError
from .auth import SESSION_COOKIE, KeyCheck, key_dependency
from .errors import status_for
from .images import page_available
from .routes import _reading

if TYPE_CHECKING:
    from ..report.views import HitView
    from ..types import Hit
    from .state import ServerState

DEFAULT_K = 5
MAX_K = 20  # a page of 20 page images is already long; the JSON API goes to 100
_MAX_REGIONS = 5
_MAX_QUERY = 1000
_FAILED = "The search failed on the server (the details are in the server's log)."
_log = logging.getLogger(__name__)

#: no script may run, whatever reaches the page; images and the form stay on this server
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the query is in the URL
    "Cache-Control": "no-store",
}


def _views(state: ServerState, collection: str, hits: Sequence[Hit]) -> list[HitView]:
    from ..report.views import hit_view

    views = []
    hashes: dict[str, str] = {}
    for hit in hits:
        view = hit_view(hit)
        if not page_available(state, hit.doc_id, [hit.source, *hit.paths], hashes):
            # as the report does: no boxes over a picture of another version (or none);
            # the file's name only, the server's paths are not the reader's business
            view.notice = (f"The source file {view.name} has changed since it was indexed "
                           "or is gone: its page is not shown and its regions are not "
                           "drawn. The region text below is as indexed.")
            views.append(view)
            continue
        # relative, so the page also works mounted below a prefix; the id is all it names
        view.image = f"images/{state.ids.make(collection, hit.doc_id, hit.page)}"
        view.image_size = (int(hit.page_width), int(hit.page_height))
        views.append(view)
    return views


def _render(status: int = 200, **context: Any) -> HTMLResponse:
    from ..report.render import environment

    hits = context.setdefault("hits", [])
    context.setdefault("searched", False)
    context.setdefault("message", None)
    context.setdefault("signin", False)
    context.setdefault("collections", [])
    context.setdefault("collection", None)
    context.setdefault("query", "")
    context.setdefault("k", DEFAULT_K)
    context["status"] = status
    context["max_boxes"] = max((len(v.boxes) for v in hits), default=0)
    html = environment().get_template("search.html.j2").render(**context)
    headers = dict(_HEADERS)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return HTMLResponse(html, status_code=status, headers=headers)


def _too_long(q: str | None, collection: str | None, k: str | None) -> str | None:
    """Why the parameters are refused, or None. Checked here rather than by FastAPI, so
    the answer is this page (a 400) and not a JSON 422."""
    if len(q or "") > _MAX_QUERY:
        return f"The query is longer than {_MAX_QUERY} characters."
    if len(collection or "") > 200 or len(k or "") > 10:
        return "The collection name or the number of pages is too long."
    return None


def _k(text: str | None) -> int | None:
    """Pages asked for: a whole number, clamped to 1..MAX_K; None when it is not one."""
    if text is None or not text.strip():
        return DEFAULT_K
    try:
        return min(MAX_K, max(1, int(text.strip())))
    except ValueError:
        return None


def build_page_router(state: ServerState, api_key: str | None) -> APIRouter:
    router = APIRouter(include_in_schema=False)  # a page for people, not part of the API
    check = KeyCheck(api_key)
    signed_in = key_dependency(api_key, cookie=True, refuse=False)

    def names() -> list[str]:
        try:
            return state.collections.names()
        except Exception:  # noqa: BLE001 - the form still shows, with a message below
            _log.exception("listing collections for the search page failed")
            return []

    @router.get("/", response_class=HTMLResponse)
    def search_page(q: str | None = Query(None), collection: str | None = Query(None),
                    k: str | None = Query(None),
                    authorized: bool = Depends(signed_in)) -> HTMLResponse:
        # lengths checked here, not by FastAPI, so an over-long query is an HTML page too
        too_long = _too_long(q, collection, k)
        if too_long:
            return _render(400, signin=not authorized,
                           collections=names() if authorized else [], message=too_long)
        query = (q or "").strip()
        if not authorized:
            return _render(401, signin=True, query=query, collection=collection,
                           k=k or DEFAULT_K,
                           message="This server needs its API key: enter it to sign in.")
        available = names()
        chosen = collection if collection is not None else (available[0] if available
                                                            else None)
        pages = _k(k)
        form = {"collections": available, "collection": chosen, "query": query,
                "k": pages or DEFAULT_K}
        if pages is None:
            return _render(400, **form, message=f"Pages must be a whole number from 1 to "
                                                f"{MAX_K}.")
        if not query:  # nothing asked yet: just the form
            if not available:
                return _render(**form, message="There are no collections yet: index or "
                                               "upload documents first.")
            return _render(**form)
        if chosen is None:
            return _render(404, **form, message="There are no collections to search.")
        try:
            retriever = state.collections.get(chosen).warm()
            hits = _reading(lambda: retriever.search(query, pages, mode="hybrid",
                                                     max_regions=_MAX_REGIONS))
            views = _views(state, chosen, hits)
        except CollectionNotFoundError:
            return _render(404, **form, message=f"There is no collection named "
                                                f"\u201c{chosen}\u201d here; pick one of "
                                                "the list.")
        except RetrieverError as exc:
            status = status_for(exc)
            if status >= 500:  # the server's trouble: its message may name its files
                _log.error("search page: %s", exc.message)
                message = _FAILED
            else:
                message = exc.message
            return _render(status, **form, message=message)
        except Exception:  # noqa: BLE001 - logged for the operator, not shown to the user
            _log.exception("search page: the search failed")
            return _render(500, **form, message=_FAILED)
        return _render(**form, hits=views, searched=True)

    @router.post("/session", response_class=HTMLResponse, response_model=None)
    def sign_in(request: Request, key: str = Form(""), q: str = Form(""),
                collection: str = Form(""), k: str = Form("")) -> Response:
        """The search page's sign-in: the key, once, in a POST body (never a URL, which
        logs and browser history keep), traded for the session cookie."""
        too_long = _too_long(q, collection, k)
        if too_long:
            return _render(400, signin=True, message=too_long)
        back = {name: value for name, value in (("q", q), ("collection", collection),
                                                 ("k", k)) if value}
        if not check.key(key):
            return _render(401, signin=True, query=q, collection=collection or None,
                           k=k or DEFAULT_K, message="That is not this server's API key.")
        # relative: resolved against /session, it is this server's page, whatever prefix
        response = RedirectResponse("./" + (f"?{urlencode(back)}" if back else ""),
                                    status_code=303)
        if check.required:
            response.set_cookie(SESSION_COOKIE, check.session_token, httponly=True,
                                samesite="strict", path="/",
                                secure=request.url.scheme == "https")
        return response

    return router

"""``create_app``: the FastAPI application over a data directory.

Routes (``routes``, ``images``, ``page``): ``GET /`` (the search page) and ``POST
/session`` (its sign-in), ``POST /search``, ``POST /context``, ``GET
/collections``, ``GET /collections/{name}``, ``POST /collections/{name}/documents``,
``DELETE /collections/{name}/documents/{doc_id}``, ``GET /images/{image_id}``, ``GET
/healthz``, ``GET /metrics``, ``GET /openapi.json``. With ``api_key`` every route but
``/healthz`` needs it (``auth``), the OpenAPI document included, which is why FastAPI's
own unauthenticated ``/openapi.json`` and ``/docs`` are turned off and served here. The
search page and the images it shows also take the session cookie its sign-in sets.
"""

from __future__ import annotations

__all__ = ["create_app", "DEFAULT_MAX_UPLOAD_BYTES"]

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from .. import __version__, config

DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024


def create_app(data_dir: str | os.PathLike[str] | None = None, *, api_key: str | None = None,
               encoder: str | None = None, encoder_options: dict[str, Any] | None = None,
               ocr: str | None = "tesseract",
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               tokenizer: str | None = None, index_workers: int = 0,
               image_secret: bytes | None = None, ray: bool = False,
               ray_setup: Any = None) -> Any:
    """The app. ``encoder``/``encoder_options``: what a collection created by an upload
    uses (default text/minilm). ``tokenizer``: what ``/context`` counts its budget with
    (default: the approximation). ``image_secret``: the key image ids are signed with
    (default: random per process). ``max_upload_bytes`` caps every request body (at
    least 64 KiB, so a tiny upload cap never refuses a search's JSON). ``ray``: serve each
    collection split into shards as one, one Ray actor per shard (Ray must be running or
    is started locally); ``ray_setup`` runs first in each actor."""
    from fastapi import Depends, FastAPI
    from fastapi.responses import JSONResponse, Response

    from .auth import key_dependency
    from .errors import install_handlers
    from .ids import ImageIds
    from .images import build_image_router
    from .limits import BodyLimit
    from .metrics import Metrics, MetricsMiddleware
    from .models import Health
    from .page import build_page_router
    from .routes import build_router
    from .state import Collections, ServerState
    from .uploads import UploadStore

    root = Path(config.data_dir(data_dir))
    metrics = Metrics()
    state = ServerState(
        collections=Collections(root, encoder=encoder, encoder_options=encoder_options,
                                ocr=ocr, ray=ray, ray_setup=ray_setup),
        uploads=UploadStore(root), ids=ImageIds(image_secret), metrics=metrics,
        max_upload_bytes=int(max_upload_bytes), tokenizer=tokenizer,
        index_workers=index_workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.collections.close()

    app = FastAPI(title="vision-retriever", version=__version__, lifespan=lifespan,
                  openapi_url=None, docs_url=None, redoc_url=None,
                  description="Search PDFs and images: pages and the regions on them "
                              "that answer.")
    app.state.retriever = state
    install_handlers(app)
    secured = [Depends(key_dependency(api_key))]
    app.include_router(build_router(state), dependencies=secured)
    # the page's <img> tags cannot send a header: images take its session cookie too
    app.include_router(build_image_router(state),
                       dependencies=[Depends(key_dependency(api_key, cookie=True))])
    app.include_router(build_page_router(state, api_key))  # checks the key itself

    @app.get("/healthz", response_model=Health, tags=["server"])
    def healthz() -> dict[str, str]:
        """Liveness; the one route that needs no API key."""
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["server"], dependencies=secured, response_class=Response,
             response_model=None)
    def prometheus() -> Response:
        """Prometheus text format: requests by route and status, latency, pages indexed."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/openapi.json", tags=["server"], dependencies=secured, include_in_schema=False,
             response_model=None)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    # the last added is the outermost: metrics see every answer, the cap's 413 too
    app.add_middleware(BodyLimit, max_bytes=max(int(max_upload_bytes), 64 * 1024))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app

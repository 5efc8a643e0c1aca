"""The optional HTTP server (``retriever serve``): FastAPI routes over the SDK.

Nothing here is imported by ``import retriever``; FastAPI, uvicorn and prometheus-client
come with the ``server`` extra (``pip install 'vision-retriever[server]'``).

Modules: ``app`` (``create_app``), ``routes`` and ``images`` (the endpoints), ``page``
(the HTML search page at ``/``, drawn with the report's templates), ``models``
(the pydantic schemas the OpenAPI document shows), ``state`` (one cached ``Retriever`` per
collection), ``uploads`` (where uploaded files are stored), ``ids`` (opaque image ids),
``auth`` (API key and bind checks), ``limits`` (request size cap), ``metrics``
(Prometheus), ``errors`` (``RetrieverError`` -> HTTP status), ``run`` (``serve``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app", "serve"]

if TYPE_CHECKING:
    from .app import create_app
    from .run import serve


def __getattr__(name: str) -> Any:
    # lazy, so a missing extra is reported by the function that needs it (run.serve)
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "serve":
        from .run import serve

        return serve
    raise AttributeError(f"module 'retriever.server' has no attribute {name!r}")

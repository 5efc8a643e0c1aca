"""``RetrieverError`` -> an HTTP status and a JSON body like the CLI's message and hint."""

from __future__ import annotations

__all__ = ["status_for", "error_body", "install_handlers"]

from typing import Any

from ..errors import (
    BadInputError,
    CollectionBusyError,
    CollectionNotFoundError,
    DocumentNotFoundError,
    ManifestMismatchError,
    MissingDependencyError,
    RetrieverError,
    UsageError,
)

# most specific first: the first class an error is an instance of decides
_STATUS: tuple[tuple[type[RetrieverError], int], ...] = (
    (CollectionNotFoundError, 404),
    (DocumentNotFoundError, 404),
    (CollectionBusyError, 409),  # another writer (a CLI index run, say) holds the lock
    (ManifestMismatchError, 409),
    (BadInputError, 422),
    (UsageError, 400),
    (MissingDependencyError, 503),
)


def status_for(exc: RetrieverError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(message: str, hint: str | None = None, exit_code: int = 1,
               **extra: Any) -> dict[str, Any]:
    """The JSON of every error: the CLI's ``error:`` and ``hint:`` lines and exit code."""
    return {"error": message, "hint": hint, "exit_code": int(exit_code), **extra}


def install_handlers(app: Any) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.exception_handler(RetrieverError)
    async def _retriever_error(request: Request, exc: RetrieverError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.hint, exc.exit_code),
                            status_code=status_for(exc))

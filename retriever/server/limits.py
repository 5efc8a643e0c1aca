"""A cap on request bodies (uploads): 413 once a body is larger than the cap.

Checked twice: the declared ``Content-Length`` before anything is read, and the bytes as
they arrive (a chunked upload declares no length), so an oversize upload is refused
without being stored whole first. Starlette parses a multipart body before the endpoint
runs, so the endpoint itself would see the cap only after the whole body was on disk.
"""

from __future__ import annotations

__all__ = ["BodyLimit"]

import json
from typing import Any


class BodyLimit:
    """Pure ASGI middleware: at most ``max_bytes`` of request body per request."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        from starlette.exceptions import HTTPException

        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # FastAPI passes an HTTPException from body parsing on as it is
                    raise HTTPException(413, detail=self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"request body over the {self.max_bytes} byte limit"

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"error": self._message(), "hint": "upload a smaller file, or "
                           "start the server with a larger --max-upload-mb",
                           "exit_code": 1}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

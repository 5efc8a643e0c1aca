"""API key checks and the bind rule.

With a key configured every route but ``/healthz`` needs it, sent as
``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; a missing or wrong one is a 401.
Keys are compared with ``hmac.compare_digest`` so the time taken says nothing about how
much of a guess was right. The key is read from an environment variable the operator
names (``--api-key-env VAR``), never from the command line, where other users of the
machine could read it in the process list.

Binding anything but a loopback address without a key is refused: the server would
otherwise answer anyone who can reach the machine.
"""

from __future__ import annotations

__all__ = ["is_loopback", "key_from_env", "check_bind", "key_dependency"]

import hmac
import ipaddress
import os
from collections.abc import Callable
from typing import Any

from ..errors import UsageError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``; any other name counts as reachable
    from outside (it may resolve to anything)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def key_from_env(variable: str | None) -> str | None:
    """The API key held by ``variable``; None when no variable is named."""
    if variable is None:
        return None
    value = os.environ.get(variable, "")
    if not value.strip():
        raise UsageError(f"--api-key-env {variable}: the environment variable {variable} "
                         "is not set or empty",
                         hint=f"export {variable}=<a long random key>, e.g. from "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return value.strip()


def check_bind(host: str, api_key: str | None) -> None:
    if api_key is None and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without an API key: anyone who can reach this "
            "machine could search, upload and delete documents",
            hint="set a key with --api-key-env VAR (the key in the environment variable "
                 "VAR), or bind 127.0.0.1")


def key_dependency(api_key: str | None) -> Callable[..., Any]:
    """A FastAPI dependency that lets a request through only with ``api_key`` (or always,
    when it is None). Declared through FastAPI's security classes so the OpenAPI document
    shows both ways of sending it."""
    from fastapi import Depends, HTTPException
    from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")
    expected = api_key.encode("utf-8") if api_key is not None else None

    def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                    key: str | None = Depends(header)) -> None:
        if expected is None:
            return
        given = key if key is not None else (credentials.credentials if credentials else None)
        if given is None or not hmac.compare_digest(given.encode("utf-8"), expected):
            raise HTTPException(status_code=401, detail="missing or wrong API key",
                                headers={"WWW-Authenticate": "Bearer"})

    return require_key

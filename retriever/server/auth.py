"""API key checks and the bind rule.

With a key configured every route but ``/healthz`` needs it, sent as
``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; a missing or wrong one is a 401.
Keys are compared with ``hmac.compare_digest`` so the time taken says nothing about how
much of a guess was right. The key is read from an environment variable the operator
names (``--api-key-env VAR``), never from the command line, where other users of the
machine could read it in the process list.

A browser cannot send a header with a plain form or an ``<img>``, so the search page
(``GET /``) and the page images it shows (``GET /images/...``) also take a session cookie:
``POST /session`` with the key in a form field sets it (``HttpOnly``, ``SameSite=Strict``,
``Secure`` over HTTPS). The cookie holds an HMAC of the key, not the key, and no other
route accepts it: a cookie is sent by the browser on its own, so routes that change
things (uploads, deletes) or answer JSON to scripts keep needing the header.

Binding anything but a loopback address without a key is refused: the server would
otherwise answer anyone who can reach the machine.
"""

from __future__ import annotations

__all__ = ["SESSION_COOKIE", "KeyCheck", "check_bind", "is_loopback", "key_dependency",
           "key_from_env"]

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Callable
from typing import Any

from ..errors import UsageError

#: the cookie the search page's sign-in sets
SESSION_COOKIE = "retriever_session"
_SESSION_CONTEXT = b"vision-retriever browser session v1"


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


class KeyCheck:
    """Whether a request carries the API key: the one comparison every route uses."""

    def __init__(self, api_key: str | None) -> None:
        self.required = api_key is not None
        self._key = api_key.encode("utf-8") if api_key is not None else b""
        # derived, so a stolen cookie (or a browser's cookie store) never holds the key
        self._session = hmac.new(self._key, _SESSION_CONTEXT, hashlib.sha256).hexdigest()

    @staticmethod
    def _same(given: str | None, expected: bytes) -> bool:
        if given is None:
            return False
        return hmac.compare_digest(given.encode("utf-8", "replace"), expected)

    def key(self, given: str | None) -> bool:
        """True when ``given`` is the key (or none is needed)."""
        return not self.required or self._same(given, self._key)

    @property
    def session_token(self) -> str:
        """The session cookie's value for this key."""
        return self._session

    def session(self, cookie: str | None) -> bool:
        """True when ``cookie`` is the session cookie of this key (or none is needed)."""
        return not self.required or self._same(cookie, self._session.encode("ascii"))


def key_dependency(api_key: str | None, *, cookie: bool = False,
                   refuse: bool = True) -> Callable[..., Any]:
    """A FastAPI dependency that lets a request through only with ``api_key`` (or always,
    when it is None). Declared through FastAPI's security classes so the OpenAPI document
    shows the ways of sending it. ``cookie``: the session cookie counts too (the search
    page and its images only). ``refuse=False``: answer True/False instead of raising the
    401, for a page that shows its own sign-in form."""
    from fastapi import Depends, HTTPException
    from fastapi.security import (
        APIKeyCookie,
        APIKeyHeader,
        HTTPAuthorizationCredentials,
        HTTPBearer,
    )

    bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")
    check = KeyCheck(api_key)

    def allowed(credentials: HTTPAuthorizationCredentials | None, key: str | None,
                session: str | None) -> bool:
        if not check.required:
            return True
        given = key if key is not None else (credentials.credentials if credentials else None)
        return check.key(given) if given is not None else (
            session is not None and check.session(session))

    def outcome(ok: bool) -> bool:
        if not ok and refuse:
            raise HTTPException(status_code=401, detail="missing or wrong API key",
                                headers={"WWW-Authenticate": "Bearer"})
        return ok

    if not cookie:
        def require_key(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                        key: str | None = Depends(header)) -> bool:
            return outcome(allowed(credentials, key, None))

        return require_key

    session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                                  description="the search page's session (POST /session)")

    def require_key_or_session(
            credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
            key: str | None = Depends(header),
            session: str | None = Depends(session_cookie)) -> bool:
        return outcome(allowed(credentials, key, session))

    return require_key_or_session

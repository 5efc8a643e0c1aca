"""Opaque image ids: a page (or a region of it) named without ever naming a file.

An id is ``<payload>.<tag>``: the payload (base64url JSON of collection, doc id, page and
optionally a box) and an HMAC-SHA256 tag of it under a secret the server holds. The server
makes ids for the hits it returns; a client can only hand them back. Anything it makes up
or alters fails the tag (compared in constant time) and is a 404, so a client cannot make
the server read a file it chose; the file is looked up from the collection's own record
of the document. The secret is random per process unless given, so ids last as long as
the server process (a restart invalidates them: search again).
"""

from __future__ import annotations

__all__ = ["ImageIds", "ImageRef"]

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass

from ..types import BBox

_TAG_BYTES = 16  # 128 bits: forging one is out of reach, ids stay short
_MAX_ID = 600
_DOC_ID = re.compile(r"^[0-9a-f]{8,64}$")


@dataclass(frozen=True)
class ImageRef:
    collection: str
    doc_id: str
    page: int
    bbox: BBox | None  # None: the whole page


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ImageIds:
    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or os.urandom(32)

    def _tag(self, payload: str) -> str:
        mac = hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest()
        return _b64(mac[:_TAG_BYTES])

    def make(self, collection: str, doc_id: str, page: int, bbox: BBox | None = None) -> str:
        data: dict[str, object] = {"c": collection, "d": doc_id, "p": int(page)}
        if bbox is not None:
            data["b"] = [round(float(v), 6) for v in bbox]
        payload = _b64(json.dumps(data, separators=(",", ":")).encode())
        return f"{payload}.{self._tag(payload)}"

    def parse(self, image_id: str) -> ImageRef | None:
        """The reference an id names, or None for anything the server did not make."""
        if not isinstance(image_id, str) or len(image_id) > _MAX_ID or image_id.count(".") != 1:
            return None
        payload, tag = image_id.split(".")
        try:
            expected = self._tag(payload)
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(expected.encode("ascii"), tag.encode("ascii", "replace")):
            return None
        try:  # ours from here on, but checked anyway: a bug must not become a path
            data = json.loads(_unb64(payload))
            collection, doc_id, page = str(data["c"]), str(data["d"]), int(data["p"])
            box = data.get("b")
            bbox = tuple(float(v) for v in box) if box is not None else None
        except (ValueError, KeyError, TypeError):
            return None
        if not _DOC_ID.match(doc_id) or page < 1 or (bbox is not None and len(bbox) != 4):
            return None
        return ImageRef(collection, doc_id, page, bbox)  # type: ignore[arg-type]

"""Page images for the report: rendered from the source, embedded as data URIs.

A self-contained report carries its images inside: PNG keeps text crisp and is small for
rendered PDF pages; a scan or photo compresses far better as JPEG, so the larger PNGs are
written as JPEG instead.
"""

from __future__ import annotations

__all__ = ["MAX_PNG_BYTES", "data_uri"]

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

#: a PNG bigger than this is tried as JPEG, and the smaller of the two is kept
MAX_PNG_BYTES = 600_000
_JPEG_QUALITY = 85


def _encode(image: Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "PNG":
        image.save(buffer, "PNG", optimize=False)
    else:
        image.convert("RGB").save(buffer, "JPEG", quality=_JPEG_QUALITY)
    return buffer.getvalue()


def data_uri(image: Image, *, keep_alpha: bool = False) -> str:
    """``data:image/...;base64,...`` of ``image``; ``keep_alpha`` forces PNG (overlays)."""
    data, mime = _encode(image, "PNG"), "image/png"
    if not keep_alpha and len(data) > MAX_PNG_BYTES:
        jpeg = _encode(image, "JPEG")
        if len(jpeg) < len(data):
            data, mime = jpeg, "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

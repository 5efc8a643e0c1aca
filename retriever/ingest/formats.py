"""Which files ingest accepts, decided by file name suffix.

The suffix is only the first filter (what discovery picks up inside a directory and what
``open_document`` routes to the PDF or the image reader); the readers then check the
content itself, so a text file named ``.png`` is still refused as "corrupt".
"""

from __future__ import annotations

__all__ = [
    "DocumentKind",
    "PDF_SUFFIXES",
    "IMAGE_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "kind_for_path",
    "is_supported",
]

from pathlib import Path
from typing import Literal

DocumentKind = Literal["pdf", "image"]

PDF_SUFFIXES: frozenset[str] = frozenset({".pdf"})
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"}
)
SUPPORTED_SUFFIXES: frozenset[str] = PDF_SUFFIXES | IMAGE_SUFFIXES


def kind_for_path(path: str | Path) -> DocumentKind | None:
    """``"pdf"``, ``"image"``, or None when the suffix is not supported.

    Case-insensitive: scanners and cameras happily write ``SCAN.PDF`` and ``IMG_1.JPG``.
    """
    suffix = Path(path).suffix.lower()
    if suffix in PDF_SUFFIXES:
        return "pdf"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def is_supported(path: str | Path) -> bool:
    return kind_for_path(path) is not None

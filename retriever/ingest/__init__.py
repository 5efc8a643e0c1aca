"""Ingest: find input files, validate them, and turn them into ``Page`` objects.

``discover`` expands user paths into document files, ``open_document`` validates one file
and ``Document.pages()`` renders its pages one at a time. Bad input is a
``BadInputError`` naming the file and a reason (not-found, unsupported, not-a-regular-file,
empty, unreadable, corrupt, encrypted, too-large), so a batch can record it and go on.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_MAX_PIXELS",
    "MIN_DPI",
    "SUPPORTED_SUFFIXES",
    "Document",
    "DocumentKind",
    "content_hash",
    "discover",
    "file_sha256",
    "is_supported",
    "kind_for_path",
    "normalize_image",
    "open_document",
]

from .discover import discover
from .document import DEFAULT_DPI, Document, open_document
from .formats import SUPPORTED_SUFFIXES, DocumentKind, is_supported, kind_for_path
from .hashing import content_hash, file_sha256
from .images import DEFAULT_MAX_PIXELS, normalize_image
from .pdf import MIN_DPI

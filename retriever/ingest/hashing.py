"""Content hashes: a document's identity is its bytes, not its path.

Hashing the content means a renamed or moved file keeps its ``doc_id`` (the index can
recognise it and skip re-encoding) and a file edited in place gets a new one.
"""

from __future__ import annotations

__all__ = ["DOC_ID_LENGTH", "content_hash", "file_sha256", "doc_id_from_hash"]

import hashlib
from pathlib import Path

from ..errors import BadInputError

DOC_ID_LENGTH = 20  # hex chars: 80 bits, collision-free for any realistic corpus
_CHUNK = 1 << 20  # stream 1 MiB at a time so a 2 GB PDF never sits in memory


def file_sha256(path: str | Path) -> str:
    """Full sha256 hex digest (64 chars) of the file's bytes, read in chunks.

    Raises ``BadInputError(path, reason)`` with reason not-found, unsupported (a directory)
    or unreadable when the bytes cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError as exc:
        raise BadInputError(str(path), "not-found", exc.strerror or "no such file") from exc
    except IsADirectoryError as exc:
        raise BadInputError(str(path), "unsupported", "is a directory") from exc
    except OSError as exc:  # permission denied, I/O error on a failing disk, ...
        raise BadInputError(
            str(path), "unreadable", exc.strerror or str(exc),
            hint="check the file's permissions",
        ) from exc
    return digest.hexdigest()


def doc_id_from_hash(hex_digest: str) -> str:
    """The document id stored everywhere: the first ``DOC_ID_LENGTH`` hex chars."""
    return hex_digest[:DOC_ID_LENGTH]


def content_hash(path: str | Path) -> str:
    """The file's ``doc_id``: the first 20 hex chars of the sha256 of its bytes.

    This is the value ``Page.doc_id`` carries, so a caller can check "already indexed?"
    before opening the file. Raises like ``file_sha256``.
    """
    return doc_id_from_hash(file_sha256(path))

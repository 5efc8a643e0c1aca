"""Content hashes: a document's identity is its bytes, not its path.

Hashing the content means a renamed or moved file keeps its ``doc_id`` (the index can
recognise it and skip re-encoding) and a file edited in place gets a new one.
"""

from __future__ import annotations

__all__ = ["DOC_ID_LENGTH", "content_hash", "file_sha256", "doc_id_from_hash"]

import hashlib
import os
import stat
from pathlib import Path

from ..errors import BadInputError
from .filekinds import NOT_REGULAR, non_regular_detail, stat_failure

DOC_ID_LENGTH = 20  # hex chars: 80 bits, collision-free for any realistic corpus
_CHUNK = 1 << 20  # stream 1 MiB at a time so a 2 GB PDF never sits in memory
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # POSIX only; Windows has no FIFOs to open
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows only


def file_sha256(path: str | Path) -> str:
    """Full sha256 hex digest (64 chars) of the file's bytes, read in chunks.

    Raises ``BadInputError(path, reason)`` with reason not-found, unsupported (a directory),
    not-a-regular-file (a FIFO, socket or device) or unreadable when the bytes cannot be read.
    """
    digest = hashlib.sha256()
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for
        # ever; it changes nothing for a regular file. The kind is then checked on the
        # open descriptor, so a file swapped for a FIFO after discovery is caught too.
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_BINARY)
    except OSError as exc:
        reason, detail = stat_failure(path, exc)
        hint = "check the file's permissions" if isinstance(exc, PermissionError) else None
        raise BadInputError(str(path), reason, detail, hint=hint) from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise BadInputError(str(path), "unsupported", "is a directory")
        detail = non_regular_detail(mode)
        if detail is not None:
            raise BadInputError(str(path), NOT_REGULAR, detail)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        try:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        except OSError as exc:  # an I/O error on a failing disk, ...
            raise BadInputError(str(path), "unreadable", exc.strerror or str(exc)) from exc
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

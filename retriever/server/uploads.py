"""Where uploaded files live: ``DATA_DIR/uploads/COLLECTION/DOC_ID/NAME``.

The client's file name is only a label: its directories are dropped and anything but
letters, digits, ``.``, ``_`` and ``-`` is replaced, so it cannot climb out (``../``), be
absolute, or be hidden. The bytes go first to a new private file (``O_EXCL |
O_NOFOLLOW``: never through a link someone planted), and are then renamed into a directory
named by their content hash; a rename replaces a link at the destination instead of
writing through it. A directory on the way that is a link out of the uploads directory is
refused. Files are kept after indexing because they are the documents' sources: crops and
page images are rendered from them.
"""

from __future__ import annotations

__all__ = ["StoredFile", "UploadStore", "safe_name"]

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ..errors import RetrieverError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK = 1 << 20
_DOC_ID = re.compile(r"^[0-9a-f]{8,64}$")


class UploadTooLarge(Exception):
    """A file over the cap (the routes answer 413)."""


def safe_name(filename: str | None) -> str:
    """A plain file name made from whatever the client sent (suffix kept)."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = _UNSAFE.sub("_", name).lstrip(".")
    return name[-120:] or "upload"


@dataclass
class StoredFile:
    filename: str  # as the client named it (for messages)
    path: Path
    doc_id: str
    existed: bool  # the same bytes under the same name were uploaded before


class UploadStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "uploads"

    def inside(self, path: str | Path) -> bool:
        """True when ``path``, links resolved, is inside the uploads directory."""
        root = os.path.realpath(self.root)
        return os.path.realpath(path).startswith(root + os.sep)

    def is_upload(self, path: str | Path) -> bool:
        """True when ``path`` is spelt inside the uploads directory (links not resolved)."""
        root = os.path.abspath(self.root)
        return os.path.abspath(path).startswith(root + os.sep)

    def _directory(self, path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or not self.inside(path / "x"):
            raise RetrieverError(f"upload storage {path.name!r} is not a directory of this "
                                 "server's", hint="remove links from DATA_DIR/uploads")
        return path

    def store(self, collection: str, stream: BinaryIO, filename: str | None,
              max_bytes: int) -> StoredFile:
        from ..ingest import content_hash

        incoming = self._directory(self.root / collection / ".incoming")
        partial = incoming / uuid.uuid4().hex
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise UploadTooLarge(f"{safe_name(filename)} is over the "
                                             f"{max_bytes} byte limit")
                    out.write(chunk)
            doc_id = content_hash(partial)
            folder = self._directory(self.root / collection / doc_id)
            final = folder / safe_name(filename)
            existed = final.is_file() and not final.is_symlink()
            os.replace(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredFile(filename or final.name, final, doc_id, existed)

    def discard(self, stored: StoredFile) -> None:
        """Remove a stored file that did not become (part of) a document."""
        if stored.existed:
            return
        stored.path.unlink(missing_ok=True)
        try:
            stored.path.parent.rmdir()  # only when empty
        except OSError:
            pass

    def remove_document(self, collection: str, doc_id: str) -> None:
        """The stored files of a deleted document."""
        if not _DOC_ID.match(doc_id):
            return
        folder = self.root / collection / doc_id
        if folder.is_dir() and not folder.is_symlink() and self.inside(folder / "x"):
            shutil.rmtree(folder, ignore_errors=True)

"""Crash-safe file writes: a file appears complete or not at all.

Every file is written under a temporary name in its final directory, flushed and fsynced,
then renamed over its final name with ``os.replace`` (atomic on POSIX), and the directory is
fsynced so the rename itself survives a power cut. A reader therefore sees either the old
file or the complete new one, never a torn one. Used by the FAISS backend's collection
files and by the staging area of page batches (``staging.py``).
"""

from __future__ import annotations

__all__ = ["TMP_MARK", "atomic_write", "fsync_dir"]

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: part of every temporary name; anything carrying it is debris of an interrupted write
TMP_MARK = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Make renames and unlinks inside ``path`` durable (no-op where dirs cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened; rename is durable enough
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; nothing better to do
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` through ``write(file)`` so that it appears complete or not at all."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # Ctrl-C or a full disk: leave no debris behind
        raise
    fsync_dir(path.parent)

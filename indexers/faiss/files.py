"""Crash-safe file writes for the FAISS collection directory.

Each file is written atomically (``retriever.fileio.atomic_write``: a temporary name, fsync,
rename). Multi-file commits are made atomic one level up (``store.py``): new files get new
names, and one small pointer file is replaced last.

Every write in the package goes through this module's ``atomic_write`` name (looked up at
call time), which is also the seam the crash tests use to fail a commit halfway.
"""

from __future__ import annotations

__all__ = [
    "TMP_MARK",
    "atomic_write",
    "write_bytes",
    "write_json",
    "write_npy",
    "write_faiss_index",
    "read_faiss_index",
    "load_npy",
    "will_read",
    "fsync_dir",
    "WriteLock",
]

import json
import os
import threading
from pathlib import Path
from collections.abc import Iterable
from typing import Any, BinaryIO

import numpy as np

from retriever.errors import RetrieverError
from retriever.fileio import TMP_MARK, atomic_write, fsync_dir

LOCK_NAME = "LOCK"


def write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def write_json(path: Path, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, sort_keys=True) + "\n").encode())


def write_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def load_npy(path: Path, *, mmap: bool = False) -> np.ndarray:
    """Load an ``.npy`` file; object arrays (which would need pickle) are refused."""
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def will_read(array: np.ndarray, row_ranges: Iterable[tuple[int, int]]) -> None:
    """Tell the OS that these rows of a memory-mapped ``.npy`` are about to be read.

    Copying rows out of a memory map that is not in the page cache faults them in a few
    pages at a time: 128 scattered pages of 264 KB (a rerank shortlist) took 466 ms here
    that way, 29 ms when the same reads were announced first, since the kernel then issues
    them together. Only a hint: an array that is not a file mapping, a platform without
    ``posix_fadvise`` or a file that is gone (a reader of an old generation after garbage
    collection, which still reads through its mapping) skip it.
    """
    filename = getattr(array, "filename", None)
    if filename is None or not hasattr(os, "posix_fadvise"):
        return
    row_bytes = int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize
    base = int(getattr(array, "offset", 0))
    try:
        fd = os.open(filename, os.O_RDONLY)
    except OSError:
        return
    try:
        for start, end in row_ranges:
            if end > start:
                os.posix_fadvise(fd, base + start * row_bytes, (end - start) * row_bytes,
                                 os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)


def write_faiss_index(path: Path, index: Any) -> None:
    """``faiss.write_index`` into a temporary file object, then renamed like every file."""
    import faiss

    def write(f: BinaryIO) -> None:
        writer = faiss.PyCallbackIOWriter(f.write)
        try:
            faiss.write_index(index, writer)
        finally:
            del writer  # flushes faiss's internal buffer into ``f``

    atomic_write(path, write)


def read_faiss_index(path: Path) -> Any:
    import faiss

    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:  # faiss reports unreadable files as RuntimeError
        raise RetrieverError(f"FAISS index {path} is unreadable: {exc}") from exc


class WriteLock:
    """One writer at a time per collection: a thread lock plus an ``flock`` on ``LOCK``.

    Readers never take it; they read immutable files named by the pointer file.
    """

    def __init__(self, directory: Path) -> None:
        self._path = Path(directory) / LOCK_NAME
        self._thread_lock = threading.RLock()
        self._fd: int | None = None
        self._depth = 0

    def __enter__(self) -> WriteLock:
        self._thread_lock.acquire()
        try:
            if self._depth == 0:
                fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    import fcntl
                except ImportError:  # not POSIX: one process per collection is on the user
                    fcntl = None  # type: ignore[assignment]
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                self._fd = fd
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                os.close(self._fd)  # closing the descriptor releases the flock
                self._fd = None
        finally:
            self._thread_lock.release()

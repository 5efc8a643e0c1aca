"""Emptying the OS page cache between timed searches, to time reads from disk.

A search whose pages are not in the page cache (a collection bigger than RAM, or the first
queries after a reboot) reads them from disk; timing it means dropping the cache first.
Pages this process has mapped (the collection's memory-mapped files) are not dropped while
mapped, so ``drop(under=...)`` first unmaps the resident pages of every mapping of a file
below that directory (``madvise(MADV_DONTNEED)``: for a read-only file mapping the next
access simply reads the file again). Linux only, and only as root: ``drop()`` says whether
it could.
"""

from __future__ import annotations

__all__ = ["can_drop", "drop", "timed_cold"]

import ctypes
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_CONTROL = Path("/proc/sys/vm/drop_caches")
_MADV_DONTNEED = 4


def can_drop() -> bool:
    return _CONTROL.exists() and os.access(_CONTROL, os.W_OK)


def _release_mappings(under: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    prefix = str(under.resolve()) + os.sep
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith(prefix) and "w" not in fields[1]:
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            libc.madvise(lo, hi - lo, _MADV_DONTNEED)


def drop(under: Path | None = None) -> bool:
    """Write back dirty pages, then drop clean ones (and this process's read-only mappings
    of files below ``under``); -> whether the cache was dropped."""
    if not can_drop():
        return False
    if under is not None:
        _release_mappings(Path(under))
    os.sync()
    try:
        _CONTROL.write_text("1\n")  # 1: the page cache only (not dentries and inodes)
    except OSError:
        return False
    return True


def timed_cold(search: Callable[[Any], Any], queries: Sequence[Any],
               under: Path) -> tuple[list[float], list[Any]] | None:
    """Each query timed right after the page cache (and this process's mappings of the
    files below ``under``) is dropped -> (seconds, results), or None where it cannot be
    dropped."""
    times, results = [], []
    for q in queries:
        if not drop(under=under):
            return None
        start = time.perf_counter()
        results.append(search(q))
        times.append(time.perf_counter() - start)
    return times, results

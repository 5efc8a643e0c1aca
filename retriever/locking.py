"""One writer per collection: an exclusive, non-blocking lock held for a whole write.

Why: two ``retriever index`` runs on one collection would each encode the same files and
race to commit them (the backends keep each commit atomic, not a run), and a
``collections delete`` under a running index would pull the directory from under it. So
every writing operation (index, delete, delete_collection, optimize) takes this lock and a
second writer fails at once with ``CollectionBusyError`` (exit code 8) naming the holder.
Searches never take it: they read committed versions only, so they keep working while a
writer commits.

Where: ``<data dir>/locks/<collection>.lock``, beside ``collections/`` and not inside it,
so the file is never listed as a collection, never makes a collection "exist", and
``delete_collection`` can remove the collection's directory while holding the lock.

How: ``fcntl.flock(LOCK_EX | LOCK_NB)`` on that file. The kernel drops the lock when its
process dies (even on SIGKILL), so a lock left by a dead process is free: the next writer
simply takes it, no stale-lock cleanup needed. The holder writes its pid, host, start time
(ISO 8601, UTC) and operation into the file, only to explain who holds it. A lock held by
this process is re-entrant in the thread that holds it (an index run that optimizes at
its end), and busy for other threads.

Not POSIX (no fcntl): no lock is taken; one writer per collection is then on the user.
"""

from __future__ import annotations

__all__ = ["LOCKS_DIR", "writer_lock", "lock_path", "read_holder", "writes"]

import functools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from . import config
from .errors import CollectionBusyError, RetrieverError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

LOCKS_DIR = "locks"
#: how the holder's operation reads in the busy message: "is being <verb>"
_VERBS = {"index": "indexed", "delete": "edited (delete)", "delete_collection": "deleted",
          "optimize": "optimized"}
_READ_TRIES = 5  # the holder writes its details just after it locks; give it a moment

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Held:
    fd: int
    thread: int
    depth: int


_held: dict[str, _Held] = {}  # lock file -> this process's hold on it
_held_guard = threading.Lock()


def lock_path(data_dir: str | os.PathLike[str] | None, collection: str) -> Path:
    """The lock file of ``collection`` in ``data_dir`` (see the module docstring)."""
    root = config.data_dir(data_dir)
    return root / LOCKS_DIR / f"{config.validate_collection_name(collection)}.lock"


def read_holder(path: Path) -> dict[str, Any]:
    """What the current holder wrote into the lock file; {} when unreadable or empty."""
    for attempt in range(_READ_TRIES):
        try:
            data = json.loads(path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            return data
        time.sleep(0.01 * (attempt + 1))
    return {}


def _busy(collection: str, holder: dict[str, Any]) -> CollectionBusyError:
    verb = _VERBS.get(str(holder.get("operation")), "written")
    who = (f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('since', '?')}"
           if "pid" in holder else "another process")
    return CollectionBusyError(
        f"collection {collection!r} is being {verb} by {who}",
        hint="wait for it to finish and run the command again; if that process is gone, "
             "its lock went with it: just retry",
        holder=holder)


def _describe(collection: str, operation: str) -> bytes:
    since = datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since,
                       "operation": operation, "collection": collection}).encode()


def _acquire(path: Path, collection: str, operation: str) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RetrieverError(f"cannot create the writer lock of collection {collection!r} "
                             f"at {path}: {exc.strerror or exc}",
                             hint="check that the data directory is writable") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _busy(collection, read_holder(path)) from None
    except BaseException:
        os.close(fd)
        raise
    try:  # ours now: say who we are (a reader may catch it empty for a moment)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _describe(collection, operation), 0)
    except OSError:
        pass  # the lock holds without its description; the busy message says less
    return fd


@contextmanager
def writer_lock(data_dir: str | os.PathLike[str] | None, collection: str,
                operation: str = "index") -> Iterator[Path]:
    """Hold ``collection``'s writer lock for the block; raise ``CollectionBusyError`` at
    once when another process or thread holds it. ``operation`` ("index", "delete",
    "delete_collection", "optimize") is recorded for the busy message. Yields the lock
    file's path."""
    path = lock_path(data_dir, collection)
    if fcntl is None:  # pragma: no cover - not POSIX
        yield path
        return
    key, me = str(path.resolve()), threading.get_ident()  # one key however it is spelt
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            if held.thread != me:
                raise _busy(collection, read_holder(path))
            held.depth += 1
        else:
            _held[key] = held = _Held(_acquire(path, collection, operation), me, 1)
    try:
        yield path
    finally:
        with _held_guard:
            held.depth -= 1
            if held.depth == 0:
                del _held[key]
                try:
                    os.ftruncate(held.fd, 0)  # nobody holds it: nothing to describe
                except OSError:
                    pass
                os.close(held.fd)  # closing the descriptor releases the flock


def writes(operation: str) -> Callable[[F], F]:
    """Decorator for a ``Retriever`` method that writes: run it under the writer lock of
    ``self.collection`` in ``self.root``."""
    def decorate(method: F) -> F:
        @functools.wraps(method)
        def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
            with writer_lock(self.root, self.collection, operation):
                return method(self, *args, **kwargs)
        return locked  # type: ignore[return-value]
    return decorate

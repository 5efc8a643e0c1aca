"""One error family for the whole project.

Every error carries a message (what went wrong, naming the file or collection), a hint
(what to do about it) and an exit code, so the CLI maps all of them in one place.
"""

from __future__ import annotations

__all__ = [
    "ExitCode",
    "RetrieverError",
    "UsageError",
    "BadInputError",
    "CollectionNotFoundError",
    "ManifestMismatchError",
    "MissingDependencyError",
    "PluginError",
    "DocumentNotFoundError",
    "CollectionBusyError",
    "CollectionCorruptError",
    "IndexInterrupted",
]

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit codes; stable, documented in the README."""

    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3  # the run finished but some input files failed
    NOT_FOUND = 4
    MISMATCH = 5  # collection built with another encoder / schema
    MISSING_DEPENDENCY = 6
    PLUGIN = 7
    BUSY = 8  # another process is writing the collection (retriever.locking)
    INTERRUPTED = 130


class RetrieverError(Exception):
    """Base class: message + hint + exit code."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class UsageError(RetrieverError):
    exit_code = ExitCode.USAGE


class BadInputError(RetrieverError):
    """One input file cannot be used; ``path`` and ``reason`` name it and say why.

    ``reason`` is a short machine-friendly word: corrupt, encrypted, empty, too-large,
    unreadable, unsupported, not-found, not-a-regular-file (a FIFO, socket or device),
    no-text (an encoder that reads text found none on any page).
    """

    def __init__(self, path: str, reason: str, detail: str = "", hint: str | None = None):
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        text = f"{self.path}: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(text, hint)


class CollectionNotFoundError(RetrieverError):
    exit_code = ExitCode.NOT_FOUND


class ManifestMismatchError(RetrieverError):
    exit_code = ExitCode.MISMATCH


class MissingDependencyError(RetrieverError):
    exit_code = ExitCode.MISSING_DEPENDENCY


class PluginError(RetrieverError):
    exit_code = ExitCode.PLUGIN


class DocumentNotFoundError(RetrieverError):
    """Nothing in the collection matches the paths or document ids given."""

    exit_code = ExitCode.NOT_FOUND


class CollectionBusyError(RetrieverError):
    """Another process (or thread) holds the collection's writer lock (``retriever.locking``).

    ``holder`` is what that writer recorded in the lock file (pid, host, since,
    operation); empty when it could not be read.
    """

    exit_code = ExitCode.BUSY

    def __init__(self, message: str, hint: str | None = None,
                 holder: dict[str, Any] | None = None) -> None:
        super().__init__(message, hint)
        self.holder = dict(holder or {})


class CollectionCorruptError(RetrieverError):
    """A collection that cannot be read: damaged files, or a format this version does not
    know. The message names the collection; the hint says how to rebuild it."""


class IndexInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``Retriever.index``; ``report`` is what the run committed before it.

    A KeyboardInterrupt, not a RetrieverError, so ``except Exception`` does not swallow it.
    """

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, report: Any) -> None:
        super().__init__("indexing interrupted")
        self.report = report  # an IndexReport

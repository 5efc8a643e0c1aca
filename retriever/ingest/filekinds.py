"""Is this path a regular file we may read? One answer for discovery, opening and hashing.

A FIFO, socket or device named like a document must be refused from its ``stat``, never
opened for reading: a FIFO blocks ``open()`` until a writer appears, and a device may never
end. A symbolic link that points back to itself is a loop, not a "broken" link: the two
need different fixes, so they get different details.
"""

from __future__ import annotations

__all__ = ["NOT_REGULAR", "non_regular_detail", "stat_failure", "stat_regular"]

import errno
import os
import stat

from ..errors import BadInputError

NOT_REGULAR = "not-a-regular-file"
_LOOP = "symbolic link loop (it points back to itself through links)"
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def non_regular_detail(mode: int) -> str | None:
    """None for a regular file or a directory, else what the entry is, in words."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = next((words for test, words in _KINDS if test(mode)), "a special file")
    return f"{kind}, not a regular file"


def stat_failure(path: str | os.PathLike[str], exc: OSError) -> tuple[str, str]:
    """``(reason, detail)`` for a path whose ``stat`` failed with ``exc``."""
    if exc.errno == errno.ELOOP:
        return "unreadable", _LOOP
    if isinstance(exc, FileNotFoundError) or exc.errno in (errno.ENOENT, errno.ENOTDIR):
        broken = os.path.islink(path)
        return "not-found", "broken symbolic link" if broken else "no such file or directory"
    return "unreadable", exc.strerror or str(exc)


def stat_regular(path: str | os.PathLike[str]) -> os.stat_result:
    """``stat`` of a regular file, following links; else ``BadInputError``: not-found,
    unreadable (permissions, a link loop), unsupported (a directory) or not-a-regular-file."""
    try:
        info = os.stat(path)
    except OSError as exc:
        reason, detail = stat_failure(path, exc)
        raise BadInputError(str(path), reason, detail) from exc
    if stat.S_ISDIR(info.st_mode):
        raise BadInputError(str(path), "unsupported", "is a directory",
                            hint="use discover() to expand directories")
    detail = non_regular_detail(info.st_mode)
    if detail is not None:
        raise BadInputError(str(path), NOT_REGULAR, detail)
    return info

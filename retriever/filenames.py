"""File names as the collection records them: lossless, printable, and where they are.

A POSIX file name is bytes. Python hands a name that is not valid UTF-8 to us as a ``str``
with lone surrogates (``os.fsdecode(b"\\xff.pdf") == "\\udcff.pdf"``), which opens the file
again but cannot be encoded as UTF-8: Arrow string columns, ``print`` to a UTF-8 stdout
and ``json.dumps(..., ensure_ascii=False)`` all refuse it. So stores keep such names as
bytes (``os.fsencode``) and give back ``os.fsdecode`` of them, and whatever shows a name
to a person uses :func:`printable`, which writes each undecodable byte as ``\\xNN``.
"""

from __future__ import annotations

__all__ = ["printable", "is_under", "existing_first"]

import os
from collections.abc import Sequence


def printable(text: str) -> str:
    """``text`` with undecodable bytes written ``\\xNN`` (unchanged when it is valid)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # surrogates from os.fsdecode stand for the bytes 0x80-0xff
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # other lone surrogates: no byte behind them
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def is_under(path: str, roots: Sequence[str]) -> bool:
    """True when ``path`` is one of ``roots`` or inside one (all absolute, resolved)."""
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


def existing_first(paths: Sequence[str]) -> str | None:
    """The first of ``paths`` that is still a file, else None."""
    return next((p for p in paths if os.path.isfile(p)), None)

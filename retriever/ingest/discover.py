"""Turn the paths a user names into the list of document files to index.

Rules (kept small so the CLI help can state them in two lines):

* A directory is walked recursively. Inside it, hidden entries (name starting with ``.``)
  and files whose suffix is not supported are skipped silently: a folder of mixed files is
  normal, not an error. Symbolic links to directories are not followed (no cycles);
  symbolic links to files are.
* A file named explicitly is taken even if hidden; an unsupported one is reported as a
  ``FileFailure(reason="unsupported")`` because the user asked for it by name.
* A path that does not exist is ``FileFailure(reason="not-found")``; a sub-directory that
  cannot be listed is ``FileFailure(reason="unreadable")`` and the walk goes on. A
  symbolic-link loop is "unreadable" (detail: symbolic link loop), a dangling link
  "not-found" (detail: broken symbolic link).
* A FIFO, socket or device named like a document is ``FileFailure(reason=
  "not-a-regular-file")``, decided from its ``stat`` and never opened (a FIFO would block
  the whole run until something writes to it).
* ``include`` / ``exclude`` are glob patterns (``fnmatch``, case-sensitive like a shell).
  A pattern matches a file when it matches the path relative to the directory given
  (``reports/2024/q1.pdf``), or its base name (``q1.pdf``); ``*`` crosses ``/``, and a
  leading ``**/`` may match nothing. Excluded directories are pruned from the walk, so
  ``--exclude node_modules`` is cheap. Explicitly named files are filtered too, on the
  path as given and the base name: an explicit exclude is the user's intent as well.
* The same file reached twice (named twice, or through a directory and by name, or
  through a symbolic link) is returned once.
* The result is sorted, so runs are deterministic whatever order the OS lists entries in.
"""

from __future__ import annotations

__all__ = ["discover", "matches_any"]

import os
import stat
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from ..types import FileFailure
from .filekinds import NOT_REGULAR, non_regular_detail, stat_failure
from .formats import is_supported

PathLike = str | os.PathLike[str]


def matches_any(rel_path: str, patterns: Sequence[str]) -> bool:
    """True when any glob pattern matches ``rel_path`` (posix) or its base name."""
    name = rel_path.rsplit("/", 1)[-1]
    for pattern in patterns:
        if fnmatchcase(rel_path, pattern) or fnmatchcase(name, pattern):
            return True
        # "**/x.pdf" should also match a top-level "x.pdf", as in gitignore and pathlib.
        if pattern.startswith("**/") and fnmatchcase(rel_path, pattern[3:]):
            return True
    return False


def _selected(rel_path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not matches_any(rel_path, include):
        return False
    return not matches_any(rel_path, exclude)


def _entry_failure(path: Path) -> FileFailure | None:
    """Why ``path`` (not a directory) cannot be a document file, from its ``stat`` alone."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return FileFailure(str(path), *stat_failure(path, exc))
    detail = non_regular_detail(mode)
    return None if detail is None else FileFailure(str(path), NOT_REGULAR, detail)


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def _identity(path: Path) -> tuple[int, int] | str:
    """Key under which two paths are the same file (device + inode, else the real path)."""
    try:
        st = path.stat()
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino)


def _walk(
    root: Path, include: Sequence[str], exclude: Sequence[str], failures: list[FileFailure]
) -> list[Path]:
    found: list[Path] = []

    def on_error(exc: OSError) -> None:
        # An unreadable sub-directory is worth a line in the summary, not a crash.
        failures.append(FileFailure(str(exc.filename or root), "unreadable", exc.strerror or ""))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
        here = Path(dirpath)
        rel_dir = here.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        # Pruning in place tells os.walk not to descend; sorting keeps the walk stable.
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and not matches_any(prefix + d, exclude)
        )
        for name in sorted(filenames):
            if name.startswith(".") or not is_supported(name):
                continue
            rel = prefix + name
            if not _selected(rel, include, exclude):
                continue
            path = here / name
            failure = _entry_failure(path)  # a dangling link or loop, a FIFO, a device
            if failure is not None:
                failures.append(failure)
                continue
            found.append(path)
    return found


def discover(
    paths: Iterable[PathLike] | PathLike,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[list[Path], list[FileFailure]]:
    """Expand files and directories into ``(sorted document files, failures)``.

    See the module docstring for the rules. Never raises for a bad path: every problem is a
    ``FileFailure`` so the caller can index what is there and report the rest.
    """
    if isinstance(paths, (str, os.PathLike)):  # discover("docs") must not walk "d", "o", ...
        paths = [paths]
    include = (include,) if isinstance(include, str) else tuple(include)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    candidates: list[Path] = []
    failures: list[FileFailure] = []

    for raw in paths:
        path = Path(raw)
        if _is_dir(path):
            candidates.extend(_walk(path, include, exclude, failures))
            continue
        failure = _entry_failure(path)
        if failure is not None and failure.reason != NOT_REGULAR:
            failures.append(failure)  # missing, a broken link or a loop: whatever the globs
            continue
        if not _selected(path.as_posix(), include, exclude):
            continue
        if not is_supported(path):
            suffix = path.suffix or "(no suffix)"
            failures.append(FileFailure(str(path), "unsupported", f"file type {suffix}"))
        elif failure is not None:
            failures.append(failure)
        else:
            candidates.append(path)

    unique: dict[tuple[int, int] | str, Path] = {}
    for path in sorted(candidates):
        unique.setdefault(_identity(path), path)
    return sorted(unique.values()), sorted(set(failures), key=lambda f: (f.path, f.reason))

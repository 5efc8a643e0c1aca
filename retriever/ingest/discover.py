"""Turn the paths a user names into the list of document files to index.

Rules (kept small so the CLI help can state them in two lines):

* A directory is walked recursively. Inside it, hidden entries (name starting with ``.``)
  and files whose suffix is not supported are skipped silently: a folder of mixed files is
  normal, not an error. Symbolic links to directories are not followed (no cycles);
  symbolic links to files are.
* A file named explicitly is taken even if hidden; an unsupported one is reported as a
  ``FileFailure(reason="unsupported")`` because the user asked for it by name.
* A path that does not exist is ``FileFailure(reason="not-found")``; a sub-directory that
  cannot be listed is ``FileFailure(reason="unreadable")`` and the walk goes on.
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
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from ..types import FileFailure
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
            if not path.exists():  # a dangling symbolic link: it looked like a document
                failures.append(FileFailure(str(path), "not-found", "broken symbolic link"))
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
        if path.is_dir():
            candidates.extend(_walk(path, include, exclude, failures))
        elif path.exists():
            if not _selected(path.as_posix(), include, exclude):
                continue
            if not is_supported(path):
                suffix = path.suffix or "(no suffix)"
                failures.append(FileFailure(str(path), "unsupported", f"file type {suffix}"))
                continue
            candidates.append(path)
        else:
            detail = "broken symbolic link" if path.is_symlink() else "no such file or directory"
            failures.append(FileFailure(str(path), "not-found", detail))

    unique: dict[tuple[int, int] | str, Path] = {}
    for path in sorted(candidates):
        unique.setdefault(_identity(path), path)
    return sorted(unique.values()), sorted(set(failures), key=lambda f: (f.path, f.reason))

"""Where collections live and the defaults a fresh install uses."""

from __future__ import annotations

__all__ = [
    "CACHE_ENV",
    "DEFAULT_COLLECTION",
    "DEFAULT_ENCODER",
    "DEFAULT_INDEXER",
    "DEFAULT_OCR",
    "HOME_ENV",
    "cache_dir",
    "collection_path",
    "data_dir",
    "resolve_data_dir",
    "validate_collection_name",
]

import os
import re
from pathlib import Path

from .errors import UsageError

HOME_ENV = "RETRIEVER_HOME"
#: derived files that can be remade at any time (ONNX exports, rendered page images)
CACHE_ENV = "RETRIEVER_CACHE_DIR"
DEFAULT_COLLECTION = "default"
DEFAULT_ENCODER = "text/minilm"
DEFAULT_INDEXER = "lancedb"
DEFAULT_OCR = "tesseract"

_FOLDED_URI = re.compile(r"^(s3|gs|az):/[^/]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory (see ``resolve_data_dir``); a UsageError when it is a file.

    Checked here, where every caller gets it, so indexing, searching and listing all say
    "is a file" instead of a NotADirectoryError, "no collection" or an empty list.
    """
    from .storage import is_uri

    if is_uri(os.fspath(override) if override else os.environ.get(HOME_ENV)):
        # only the SDK's collection commands know object storage (retriever.storage)
        raise UsageError(
            "this command needs a local data directory, not an object-store URI",
            hint="index, search, delete and collections list/info/delete/optimize/verify "
                 "take --data-dir s3://...; give a local --data-dir here")
    path = resolve_data_dir(override)
    if _FOLDED_URI.match(str(path)):
        # a URI that went through Path(): "s3://b/p" became "s3:/b/p", a local folder
        raise UsageError(f"the data directory {path} looks like an object-store URI whose "
                         "'//' was lost", hint="this command needs a local directory")
    if path.exists() and not path.is_dir():
        raise UsageError(
            f"the data directory {path} is a file, not a directory",
            hint="pass --data-dir (or set RETRIEVER_HOME to) a directory, or move the file",
        )
    return path


def resolve_data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the override, else ``$RETRIEVER_HOME``, else the per-user dir."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs  # small, but only needed here

    return Path(platformdirs.user_data_dir("vision-retriever", appauthor=False))


def cache_dir() -> Path:
    """The cache directory: ``$RETRIEVER_CACHE_DIR``, else the per-user cache directory."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("vision-retriever", appauthor=False))


def validate_collection_name(name: str) -> str:
    # Names become directory names: refuse anything that could escape the data dir.
    if not _NAME.match(name) or name in {".", ".."} or ".." in name:
        raise UsageError(
            f"invalid collection name {name!r}",
            hint="use letters, digits, '_', '-' and '.', starting with a letter or digit",
        )
    return name


def collection_path(name: str, root: Path) -> Path:
    return root / "collections" / validate_collection_name(name)

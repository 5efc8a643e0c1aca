"""Where model weights come from: a local directory or a hub id, offline-aware.

Shared by every plugin that loads transformers models. It never downloads by itself; it
tells ``from_pretrained`` whether it may try the hub, and fingerprints local weights so a
collection can tell whether two encoders really produce the same vectors.
"""

from __future__ import annotations

__all__ = ["ModelSource", "resolve_model_source", "weights_fingerprint", "hub_offline"]

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_TRUTHY = {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when the user asked transformers / huggingface_hub never to reach the hub."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUTHY
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@dataclass(frozen=True)
class ModelSource:
    """``location`` is what to hand ``from_pretrained``."""

    location: str
    is_local: bool
    local_files_only: bool


def resolve_model_source(name_or_path: str | os.PathLike[str]) -> ModelSource:
    """A local directory is used as is; anything else is a hub id (cache only when offline)."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelSource(str(path.resolve()), is_local=True, local_files_only=True)
    if path.exists():
        raise UsageError(f"model path {text!r} is a file", hint="pass the model's directory")
    # A hub id is "name" or "org/name"; anything else that is not a directory is a typo'd path.
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1
    if looks_like_path:
        raise UsageError(f"model directory {text!r} does not exist")
    return ModelSource(text, is_local=False, local_files_only=hub_offline())


def weights_fingerprint(model_dir: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """A content hash of a model directory's weight files (sha256, hex).

    Hashes every weight file in full: reading ~100 MB takes a fraction of a second and
    makes the fingerprint exact rather than a guess from sizes or names.
    """
    root = Path(model_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode())
        with file.open("rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()

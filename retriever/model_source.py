"""Where model weights come from: a local path, ``hf:ORG/NAME``, or a catalogue name.

Shared by every plugin that loads transformers models. Nothing is guessed: a string that
is neither an existing path, nor ``hf:``-prefixed, nor a name in the plugin's catalogue is
a UsageError, so a mistyped relative directory never turns into a download attempt. It
never downloads by itself; it tells ``from_pretrained`` whether it may try the hub, and
fingerprints weights (local, or the hub cache's snapshot) so a collection can tell whether
two encoders really produce the same vectors.
"""

from __future__ import annotations

__all__ = [
    "TRUST_REMOTE_CODE",
    "HUB_PREFIX",
    "UNKNOWN_REVISION",
    "ModelSource",
    "resolve_model_source",
    "hub_source",
    "hub_snapshot_dir",
    "source_revision",
    "weights_fingerprint",
    "hub_offline",
]

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError
from .options import TRUE_WORDS, Option

#: the opt-in every plugin that loads transformers weights declares; off unless asked
TRUST_REMOTE_CODE = Option(
    "trust_remote_code", bool, False,
    "let transformers run code shipped with the weights (never stored in the collection)",
    stage="open")

HUB_PREFIX = "hf:"
#: the revision recorded when no weight files could be found to fingerprint
UNKNOWN_REVISION = "unknown"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def hub_offline() -> bool:
    """True when the user asked transformers / huggingface_hub never to reach the hub."""
    return any(
        os.environ.get(var, "").strip().lower() in TRUE_WORDS
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@dataclass(frozen=True)
class ModelSource:
    """``location`` is what to hand ``from_pretrained``: a resolved directory or a hub id."""

    location: str
    is_local: bool
    local_files_only: bool

    @property
    def hub_id(self) -> str | None:
        return None if self.is_local else self.location


def hub_source(hub_id: str) -> ModelSource:
    """A hub model by id (``ORG/NAME``); only the local cache is read when offline."""
    if not _HUB_ID.match(hub_id):
        raise UsageError(f"{hub_id!r} is not a hub model id", hint="write hf:ORG/NAME")
    return ModelSource(hub_id, is_local=False, local_files_only=hub_offline())


def resolve_model_source(name_or_path: str | os.PathLike[str],
                         catalogue: Mapping[str, str] | None = None) -> ModelSource:
    """An existing directory, ``hf:ORG/NAME``, or a name (or hub id) in ``catalogue``.

    ``catalogue`` maps a plugin's known names to hub ids (e.g. ``clip/vit-b-16`` ->
    ``openai/clip-vit-base-patch16``); its hub ids are accepted as they are too.
    """
    text = os.fspath(name_or_path)
    if text.startswith(HUB_PREFIX):
        return hub_source(text[len(HUB_PREFIX):])
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelSource(str(path.resolve()), is_local=True, local_files_only=True)
    if path.exists():
        raise UsageError(f"model path {text!r} is a file", hint="pass the model's directory")
    known = dict(catalogue or {})
    if text in known:
        return hub_source(known[text])
    if text in known.values():
        return hub_source(text)
    hint = "check the path"
    if _HUB_ID.match(text):
        hint = f"for a hub model write {HUB_PREFIX}{text}" if "/" in text else \
            f"for a hub model write {HUB_PREFIX}ORG/{text}"
    if known:
        hint += f"; known names: {', '.join(sorted(known))}"
    raise UsageError(f"model {text!r} is not a directory (it does not exist)", hint=hint)


def hub_snapshot_dir(hub_id: str, commit: str | None = None) -> str | None:
    """The hub cache's snapshot directory of ``hub_id`` (at ``commit``), if it is cached."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for revision in dict.fromkeys([commit, None]):  # the exact commit first, then "main"
        try:
            found = try_to_load_from_cache(hub_id, "config.json", revision=revision)
        except Exception:  # a malformed id or cache: no fingerprint, never a crash
            continue
        if isinstance(found, str) and Path(found).is_file():
            return str(Path(found).parent)
    return None


def source_revision(source: ModelSource, commit: str | None = None) -> str:
    """Fingerprint of the weights ``source`` loaded: the directory, or the cached snapshot.

    ``commit`` is the hub commit the model was loaded at (``config._commit_hash``), which
    picks the right snapshot when several are cached. ``UNKNOWN_REVISION`` only when no
    weight files can be found at all.
    """
    directory = source.location if source.is_local else hub_snapshot_dir(source.location, commit)
    if directory is None:
        return UNKNOWN_REVISION
    fingerprint = weights_fingerprint(directory)
    return fingerprint[:32] if fingerprint else UNKNOWN_REVISION


def weights_fingerprint(model_dir: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """A content hash of a model directory's weight files (sha256, hex); "" when none.

    Hashes every weight file in full: reading ~100 MB takes a fraction of a second and
    makes the fingerprint exact rather than a guess from sizes or names. Files are read
    through symlinks, so a hub cache snapshot hashes its blobs.
    """
    root = Path(model_dir)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    if not files:
        return ""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode())
        with file.open("rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()

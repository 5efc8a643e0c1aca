"""The one hookspec module. A plugin implements any of these with ``@hookimpl``.

Each ``register_*`` hook receives a ``register`` callback; the plugin calls it once per spec
it provides (``EncoderSpec``, ``IndexerSpec``, ``OCREngineSpec``, ``CompressorSpec``).
Built-in plugins use exactly these hooks.
"""

from __future__ import annotations

__all__ = ["hookimpl", "hookspec", "PROJECT_NAME"]

from typing import Any, Callable

import pluggy

PROJECT_NAME = "retriever"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[Any], None]


@hookspec
def register_encoders(register: Register) -> None:
    """Register encoders: ``register(EncoderSpec(...))``."""


@hookspec
def register_indexers(register: Register) -> None:
    """Register index backends: ``register(IndexerSpec(...))``."""


@hookspec
def register_ocr_engines(register: Register) -> None:
    """Register OCR engines: ``register(OCREngineSpec(...))``."""


@hookspec
def register_compressors(register: Register) -> None:
    """Register vector compressors: ``register(CompressorSpec(...))``."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the ``retriever`` CLI; ``cli`` is its ``typer.Typer`` app."""

"""Specs that plugins register: a name, a factory and a description.

Factories are called lazily, only when the component is used, so registering a plugin
never imports torch or loads weights.
"""

from __future__ import annotations

__all__ = ["ComponentSpec", "EncoderSpec", "IndexerSpec", "OCREngineSpec", "CompressorSpec"]

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UsageError


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    factory: Callable[..., Any]
    description: str = ""
    #: default keyword options for the factory; user options override them
    defaults: dict[str, Any] = field(default_factory=dict)
    #: the plugin that registered it (filled in by the host)
    plugin: str = ""

    kind: str = "component"

    def create(self, **options: Any) -> Any:
        merged = {**self.defaults, **options}
        try:
            signature = inspect.signature(self.factory)
        except (TypeError, ValueError):  # some builtins have no signature; just call
            return self.factory(**merged)
        params = signature.parameters.values()
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            known = {p.name for p in params}
            unknown = sorted(set(merged) - known)
            if unknown:
                raise UsageError(
                    f"{self.kind} {self.name!r} has no option(s) {', '.join(unknown)}",
                    hint=f"its options: {', '.join(sorted(known)) or 'none'}")
        return self.factory(**merged)


@dataclass(frozen=True)
class EncoderSpec(ComponentSpec):
    kind: str = "encoder"


@dataclass(frozen=True)
class IndexerSpec(ComponentSpec):
    """``factory(path: Path, manifest: Manifest | None, **options) -> Indexer``."""

    kind: str = "indexer"


@dataclass(frozen=True)
class OCREngineSpec(ComponentSpec):
    kind: str = "ocr"


@dataclass(frozen=True)
class CompressorSpec(ComponentSpec):
    kind: str = "compressor"

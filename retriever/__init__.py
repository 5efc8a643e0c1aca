"""vision-retriever: multimodal document and image retrieval with region-level answers.

Importing this package is cheap: heavy modules (torch, transformers, lancedb) load only
when a component that needs them is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562)
_EXPORTS = {
    "Retriever": "retriever.sdk",
    "IndexReport": "retriever.sdk",
    "Page": "retriever.types",
    "Region": "retriever.types",
    "MultiVector": "retriever.types",
    "PageRecord": "retriever.types",
    "Hit": "retriever.types",
    "RegionHit": "retriever.types",
    "FileFailure": "retriever.types",
    "Manifest": "retriever.manifest",
    "EncoderIdentity": "retriever.manifest",
    "EncoderSpec": "retriever.specs",
    "IndexerSpec": "retriever.specs",
    "OCREngineSpec": "retriever.specs",
    "CompressorSpec": "retriever.specs",
    "Option": "retriever.options",
    "hookimpl": "retriever.hookspecs",
    "RetrieverError": "retriever.errors",
    "BadInputError": "retriever.errors",
    "ExitCode": "retriever.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from .errors import BadInputError, ExitCode, RetrieverError
    from .hookspecs import hookimpl
    from .manifest import EncoderIdentity, Manifest
    from .options import Option
    from .sdk import IndexReport, Retriever
    from .specs import CompressorSpec, EncoderSpec, IndexerSpec, OCREngineSpec
    from .types import FileFailure, Hit, MultiVector, Page, PageRecord, Region, RegionHit


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'retriever' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value

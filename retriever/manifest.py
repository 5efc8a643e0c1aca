"""The manifest a collection keeps: which encoder built it and how it is stored.

Opening a collection with another encoder (or dimension, or kind) is a clear error, not
garbage results. The manifest also lets a collection be reopened without retyping how it
was built (the encoder's name and options are stored, never secrets).
"""

from __future__ import annotations

__all__ = ["SCHEMA_VERSION", "EncoderIdentity", "Manifest"]

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ManifestMismatchError, RetrieverError, UsageError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class EncoderIdentity:
    """What makes two encoders interchangeable for one collection."""

    name: str  # registry name, e.g. "text/minilm"
    model_id: str  # e.g. "sentence-transformers/all-MiniLM-L6-v2"
    revision: str  # weights fingerprint or hub revision
    dim: int
    kind: str  # "multi" | "single"
    options: dict[str, Any] = field(default_factory=dict)  # reopen without retyping

    def same_vectors_as(self, other: EncoderIdentity) -> bool:
        """True when vectors from ``other`` are comparable with ours."""
        # The revision is a fingerprint of the weights (and of any option that changes the
        # vectors), so the same weights loaded from another directory still match.
        return (self.name, self.revision, self.dim, self.kind) == (
            other.name, other.revision, other.dim, other.kind)


@dataclass(frozen=True)
class Manifest:
    encoder: EncoderIdentity
    indexer: str
    compressor: str | None = None
    quantization: str = "none"
    schema_version: int = SCHEMA_VERSION
    created_by: str = "vision-retriever"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
            data["encoder"] = EncoderIdentity(**data["encoder"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as exc:
            raise RetrieverError(f"collection manifest is unreadable: {exc}") from exc

    def check_compatible(self, encoder: EncoderIdentity, collection: str) -> None:
        """Raise ManifestMismatchError unless ``encoder`` produces vectors like ours."""
        if self.schema_version > SCHEMA_VERSION:
            raise ManifestMismatchError(
                f"collection {collection!r} uses schema {self.schema_version}, newer than "
                f"this version of vision-retriever supports ({SCHEMA_VERSION})",
                hint="upgrade vision-retriever",
            )
        if not self.encoder.same_vectors_as(encoder):
            mine, theirs = self.encoder, encoder
            raise ManifestMismatchError(
                f"collection {collection!r} was built with encoder {mine.name} "
                f"({mine.model_id}@{mine.revision[:12]}, dim {mine.dim}, {mine.kind}); "
                f"got {theirs.name} ({theirs.model_id}@{theirs.revision[:12]}, "
                f"dim {theirs.dim}, {theirs.kind})",
                hint=f"search with --encoder {mine.name}, or index into a new collection",
            )

    def check_quantization(self, asked: str | None, collection: str) -> None:
        """Raise UsageError when a quantization was asked for that the collection lacks.

        Quantization is chosen when a collection is created; ``None`` accepts any.
        """
        if asked is not None and asked != self.quantization:
            raise UsageError(
                f"collection {collection!r} uses quantization {self.quantization!r}, "
                f"not {asked!r}", hint="quantization is chosen when a collection is "
                "created; index into a new collection to change it")

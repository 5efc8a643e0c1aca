"""The manifest a collection keeps: which encoder built it and how it is stored.

Opening a collection with another encoder (or dimension, or kind) is a clear error, not
garbage results. The manifest also lets a collection be reopened without retyping how it
was built (the encoder's name and options are stored, never secrets).
"""

from __future__ import annotations

__all__ = ["SCHEMA_VERSION", "MODEL_ID_SCHEME", "EncoderIdentity", "Manifest"]

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ManifestMismatchError, RetrieverError, UsageError

SCHEMA_VERSION = 1


#: ``EncoderIdentity.model_id_scheme`` of identities made now: the model id is stable (a
#: hub id, or the catalogue id of local weights). Scheme 1, read from manifests written
#: before it existed, may hold the directory the weights were loaded from.
MODEL_ID_SCHEME = 2
_UNKNOWN = "unknown"  # model_source.UNKNOWN_REVISION: weights that could not be found


@dataclass(frozen=True)
class EncoderIdentity:
    """What makes two encoders interchangeable for one collection."""

    name: str  # registry name, e.g. "text/minilm"
    model_id: str  # e.g. "sentence-transformers/all-MiniLM-L6-v2"
    revision: str  # weights fingerprint (+ suffixes for options that change the vectors)
    dim: int
    kind: str  # "multi" | "single"
    options: dict[str, Any] = field(default_factory=dict)  # reopen without retyping
    model_id_scheme: int = MODEL_ID_SCHEME

    def same_vectors_as(self, other: EncoderIdentity) -> bool:
        """True when vectors from ``other`` are comparable with ours.

        Name, dimension, kind and model id must be equal, and the revision's weights
        fingerprint too (so the same weights loaded from another directory still match;
        the part after a ``+`` names options that change the vectors and must be equal).
        Older manifests: a model id of scheme 1 may be a directory, so it is not compared
        and the fingerprint decides; an ``unknown`` fingerprint (weights that were not
        found when the collection was built) matches the same model id, the only thing
        known about those weights.
        """
        if (self.name, self.dim, self.kind) != (other.name, other.dim, other.kind):
            return False
        mine, my_suffix = self.revision.partition("+")[::2]
        theirs, their_suffix = other.revision.partition("+")[::2]
        if my_suffix != their_suffix:
            return False
        stable = min(self.model_id_scheme, other.model_id_scheme) >= MODEL_ID_SCHEME
        if stable and self.model_id != other.model_id:
            return False
        if _UNKNOWN in (mine, theirs):
            return self.model_id == other.model_id
        return mine == theirs


@dataclass(frozen=True)
class Manifest:
    encoder: EncoderIdentity
    indexer: str
    compressor: str | None = None
    quantization: str = "none"
    schema_version: int = SCHEMA_VERSION
    created_by: str = "vision-retriever"
    #: the indexer's build-time options (``Option.stage == "build"``, e.g. FAISS
    #: index_type, vector dtype): they shaped what is stored, so they are kept with it.
    #: Manifests written before this field existed read as ``{}``.
    indexer_options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
            encoder = dict(data["encoder"])
            encoder.setdefault("model_id_scheme", 1)  # written before the field existed
            data["encoder"] = EncoderIdentity(**encoder)
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

    def check_indexer_options(self, asked: Mapping[str, Any], defaults: Mapping[str, Any],
                              collection: str) -> None:
        """Raise UsageError when a build-time indexer option differs from the stored one.

        Build-time options shaped what the collection stores, so they are chosen when it
        is created. One the manifest does not record was left at ``defaults`` (or the
        collection predates ``indexer_options``; nothing else could set them then).
        """
        for name, value in asked.items():
            stored = self.indexer_options.get(name, defaults.get(name))
            if value != stored:
                raise UsageError(
                    f"collection {collection!r} was built with indexer option "
                    f"{name}={stored!r}, not {value!r}",
                    hint=f"{name} is chosen when a collection is created; index into a new "
                         "collection to change it")

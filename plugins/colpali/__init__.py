"""Late-interaction page encoders: ColPali, ColQwen2 and ColQwen2.5 (transformers-native).

Each page becomes one 128-d vector per model token; each image token's vector carries the
box of the page cell it saw. Registering this plugin imports neither torch nor
transformers: the encoder module loads only when an encoder is created.

Pretrained weights are a name -> hub id table (data, like open_clip's pretrained tags);
``model=<local dir or hf:ORG/NAME>`` overrides the default for any name.
"""

from __future__ import annotations

__all__ = ["ModelEntry", "MODELS", "OPTIONS", "catalogue", "register_encoders"]

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from retriever.engine import ENGINE_OPTIONS
from retriever.hookspecs import hookimpl
from retriever.model_source import TRUST_REMOTE_CODE
from retriever.options import Option
from retriever.specs import EncoderSpec


@dataclass(frozen=True)
class ModelEntry:
    """One registered encoder: default weights and the transformers family that runs them."""

    hub_id: str
    family: Literal["colpali", "colqwen2"]
    description: str


MODELS: dict[str, ModelEntry] = {
    "colpali/v1.3": ModelEntry(
        "vidore/colpali-v1.3-hf", "colpali",
        "ColPali v1.3 (PaliGemma-3B, 448 px, 1024 patch vectors per page, 128-d)"),
    "colqwen2/v1.0": ModelEntry(
        "vidore/colqwen2-v1.0-hf", "colqwen2",
        "ColQwen2 v1.0 (Qwen2-VL-2B, dynamic resolution, one vector per 2x2 patch block, 128-d)"),
    # vidore/colqwen2.5-v0.2 holds a PEFT adapter for colpali-engine, not weights that
    # ColQwen2ForRetrieval loads; transformers' ColQwen2 docs name this converted checkpoint.
    "colqwen2.5/v0.2": ModelEntry(
        "Sahil-Kabir/colqwen2.5-v0.2-hf", "colqwen2",
        "ColQwen2.5 v0.2 (Qwen2.5-VL-3B, dynamic resolution, one vector per 2x2 patch block, "
        "128-d)"),
}


#: every option of the ColVision encoders; defaults are ColVisionEncoder's own
OPTIONS: tuple[Option, ...] = (
    Option("model", str, None, "weights: a local directory, hf:ORG/NAME, or a name or hub id "
           "of this plugin's table (default: this name's checkpoint)"),
    *ENGINE_OPTIONS,
    TRUST_REMOTE_CODE,
)


def catalogue() -> dict[str, str]:
    """Encoder name -> hub id: the names ``model=`` accepts besides a directory or hf:."""
    return {name: entry.hub_id for name, entry in MODELS.items()}


def _create(name: str, **options: Any) -> Any:
    from .encoder import ColVisionEncoder  # torch and transformers load only here

    return ColVisionEncoder(name, **options)


@hookimpl
def register_encoders(register: Callable[[EncoderSpec], None]) -> None:
    for name, entry in MODELS.items():
        register(EncoderSpec(name=name, factory=partial(_create, name),
                             description=f"{entry.description}; weights {entry.hub_id}",
                             options=OPTIONS))

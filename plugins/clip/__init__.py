"""Built-in CLIP-style encoders (CLIP, SigLIP) through transformers.

Registered as ``clip/<variant>`` and ``siglip/<variant>`` from the name -> hub id table in
``catalog``; ``model=<local dir or hf:ORG/NAME>`` overrides the checkpoint. Registering them
imports neither torch nor transformers: that happens when an encoder is created.
"""

from __future__ import annotations

__all__ = ["OPTIONS", "register_encoders"]

from functools import partial
from typing import Any

from retriever.engine import ENGINE_OPTIONS
from retriever.hookspecs import hookimpl
from retriever.model_source import TRUST_REMOTE_CODE
from retriever.options import Option
from retriever.specs import EncoderSpec

from .catalog import CATALOG


#: every option of the CLIP / SigLIP encoders; defaults are CLIPEncoder's own
OPTIONS: tuple[Option, ...] = (
    Option("model", str, None, "weights: a local directory, hf:ORG/NAME, or a name or hub id "
           "of this plugin's table (default: this name's checkpoint)"),
    Option("patches", bool, False, "also one boxed vector per ViT patch (multi-vector)"),
    *ENGINE_OPTIONS,
    TRUST_REMOTE_CODE,
)


def _create(name: str, hub_id: str, **options: Any) -> Any:
    from .encoder import CLIPEncoder  # torch and transformers load only here

    return CLIPEncoder(name=name, default_model=hub_id, **options)


@hookimpl
def register_encoders(register) -> None:
    for name, hub_id in CATALOG.items():
        register(EncoderSpec(
            name=name,
            factory=partial(_create, name, hub_id),
            description=f"{hub_id} (transformers): one vector per page and per query; "
                        "patches=true adds boxed patch vectors",
            options=OPTIONS,
        ))

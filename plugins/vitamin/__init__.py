"""Built-in ViTamin encoders through open_clip (``vitamin/<size>``).

The table maps our names to open_clip model configs, which are open_clip's own data.
Registering imports neither torch nor open_clip: that happens when an encoder is created.
"""

from __future__ import annotations

__all__ = ["CATALOG", "OPTIONS", "register_encoders"]

from functools import partial
from typing import Any

from retriever.engine import ENGINE_OPTIONS
from retriever.hookspecs import hookimpl
from retriever.options import Option
from retriever.specs import EncoderSpec

#: encoder name -> open_clip model config name
CATALOG: dict[str, str] = {
    "vitamin/s": "ViTamin-S",
    "vitamin/s-ltt": "ViTamin-S-LTT",
    "vitamin/b": "ViTamin-B",
    "vitamin/b-ltt": "ViTamin-B-LTT",
    "vitamin/l": "ViTamin-L",
    "vitamin/l-256": "ViTamin-L-256",
    "vitamin/l-336": "ViTamin-L-336",
    "vitamin/l-384": "ViTamin-L-384",
    "vitamin/l2": "ViTamin-L2",
    "vitamin/l2-256": "ViTamin-L2-256",
    "vitamin/l2-336": "ViTamin-L2-336",
    "vitamin/l2-384": "ViTamin-L2-384",
    "vitamin/xl-256": "ViTamin-XL-256",
    "vitamin/xl-336": "ViTamin-XL-336",
    "vitamin/xl-384": "ViTamin-XL-384",
}


#: every option of the ViTamin encoders; defaults are VitaminEncoder's own
OPTIONS: tuple[Option, ...] = (
    Option("checkpoint", str, None, "weights: a .safetensors file, a directory holding one, "
           "or an open_clip pretrained tag of the model (needs a hub)"),
    Option("patches", bool, False, "also one boxed vector per ViT token (multi-vector)"),
    *ENGINE_OPTIONS,
)


def _create(name: str, config: str, **options: Any) -> Any:
    from .encoder import VitaminEncoder  # torch and open_clip load only here

    return VitaminEncoder(name=name, config=config, **options)


@hookimpl
def register_encoders(register) -> None:
    for name, config in CATALOG.items():
        register(EncoderSpec(
            name=name,
            factory=partial(_create, name, config),
            description=f"open_clip {config}: one vector per page and per query "
                        "(checkpoint=<local weights>; patches=true adds boxed patch vectors)",
            options=OPTIONS,
        ))

"""Registered CLIP / SigLIP encoder names and the hub checkpoints they stand for (data).

``model=<local dir, hf:ORG/NAME, or a name or hub id of this table>`` overrides the
checkpoint of any entry; the name then says only which family (and so which defaults) the
weights belong to.
"""

from __future__ import annotations

__all__ = ["CATALOG", "family_of"]

#: encoder name -> Hugging Face hub id (loaded with transformers' AutoModel / AutoProcessor)
CATALOG: dict[str, str] = {
    "clip/vit-b-32": "openai/clip-vit-base-patch32",
    "clip/vit-b-16": "openai/clip-vit-base-patch16",
    "clip/vit-l-14": "openai/clip-vit-large-patch14",
    "clip/vit-l-14-336": "openai/clip-vit-large-patch14-336",
    "siglip/base-patch16-224": "google/siglip-base-patch16-224",
    "siglip/base-patch16-256": "google/siglip-base-patch16-256",
    "siglip/base-patch16-384": "google/siglip-base-patch16-384",
    "siglip/base-patch16-512": "google/siglip-base-patch16-512",
    "siglip/large-patch16-256": "google/siglip-large-patch16-256",
    "siglip/large-patch16-384": "google/siglip-large-patch16-384",
    "siglip/so400m-patch14-224": "google/siglip-so400m-patch14-224",
    "siglip/so400m-patch14-384": "google/siglip-so400m-patch14-384",
}


def family_of(name: str) -> str:
    """``"clip"`` or ``"siglip"``: the part of the name before the slash."""
    return name.split("/", 1)[0]

"""Implements ``register_encoder`` (no ``s``): a hook the host does not have."""

from retriever import EncoderSpec, hookimpl


@hookimpl
def register_encoder(register) -> None:
    register(EncoderSpec(name="misspelled/encoder", factory=lambda: None))

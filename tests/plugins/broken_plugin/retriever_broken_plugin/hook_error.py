"""Imports fine, then raises inside its register_encoders hook."""

from retriever import hookimpl


@hookimpl
def register_encoders(register) -> None:
    raise RuntimeError("licence key missing for broken/encoder")

"""Imports fine, then raises inside its register_commands hook."""

from retriever import hookimpl


@hookimpl
def register_commands(cli) -> None:
    raise ValueError("cannot add the broken-hello command")

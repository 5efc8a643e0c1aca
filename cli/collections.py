"""``retriever collections list|info|delete``."""

from __future__ import annotations

__all__ = ["collections_app"]

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import output

collections_app = typer.Typer(help="List, inspect and delete collections.", no_args_is_help=True)
DataDirOpt = Annotated[Optional[Path], typer.Option(
    "--data-dir", envvar="RETRIEVER_HOME", help="Where collections live.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout.")]


@collections_app.command("list")
def list_collections(data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> None:
    """Names of the collections in the data directory."""
    from retriever import Retriever

    names = Retriever.list_collections(data_dir)
    if json_out:
        output.print_json(names)
    else:
        for name in names:
            typer.echo(name)


@collections_app.command("info")
def info(name: Annotated[str, typer.Argument(help="Collection name.")] = "default",
         data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> None:
    """Encoder, backend and size of a collection."""
    from retriever import Retriever

    with Retriever(name, data_dir=data_dir) as retriever:
        details = retriever.info()
    if json_out:
        output.print_json(details)
        return
    enc = details["encoder"]
    typer.echo(f"collection: {details['collection']}\npath:       {details['path']}\n"
               f"backend:    {details['backend']}\n"
               f"encoder:    {enc['name']} ({enc['model_id']}, dim {enc['dim']}, {enc['kind']})\n"
               f"quantization: {details['quantization']}\n"
               f"documents:  {details['documents']}\npages:      {details['pages']}")


@collections_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="Collection name.")],
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
           data_dir: DataDirOpt = None) -> None:
    """Delete a collection and everything in it."""
    from retriever import Retriever

    if not yes:
        typer.confirm(f"Delete collection {name!r}?", abort=True, err=True)
    Retriever.delete_collection(name, data_dir)
    typer.echo(f"deleted {name}", err=True)

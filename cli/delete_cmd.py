"""``retriever delete PATH|DOC_ID...``: remove documents from a collection."""

from __future__ import annotations

__all__ = ["delete"]

from typing import Annotated

import typer

from retriever.errors import DocumentNotFoundError
from retriever.filenames import printable

from . import output
from .location import DataDirOpt, StorageOpt, storage_options


def delete(
    targets: Annotated[list[str], typer.Argument(
        help="Files as indexed, directories (every file under them) or document ids.",
        show_default=False)],
    collection: Annotated[str, typer.Option("--collection", "-c",
                                            help="Collection name.")] = "default",
    data_dir: DataDirOpt = None,
    storage_option: StorageOpt = [],
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
) -> None:
    """Remove documents; one recorded at other paths too keeps those."""
    from retriever import Retriever

    with Retriever(collection, data_dir=data_dir,
                   storage_options=storage_options(storage_option)) as retriever:
        report = retriever.delete(targets)
    if not report.matched:  # exit 4, like a collection that is not there
        raise DocumentNotFoundError(
            f"nothing in collection {collection!r} matches "
            f"{', '.join(printable(t) for t in targets)}",
            hint="give a path as it was indexed, a directory, or a doc id "
                 "(retriever search --json shows both)")
    output.print_delete_report(report, collection, json_out)

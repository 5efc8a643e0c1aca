"""``--data-dir`` and ``--storage-option``, shared by every command that opens a collection,
and ``--ray-address``, shared by the commands that can run on a Ray cluster.

``--data-dir`` is text, not a ``Path``: ``s3://bucket/prefix`` must reach the SDK as it was
typed (a ``Path`` folds the ``//``). ``--storage-option KEY=VALUE`` goes to Lance as one of
its storage options (``retriever.storage``)."""

from __future__ import annotations

__all__ = ["DataDirOpt", "RayAddressOpt", "StorageOpt", "storage_options"]

from typing import Annotated, Optional

import typer

DataDirOpt = Annotated[Optional[str], typer.Option(
    "--data-dir", envvar="RETRIEVER_HOME", show_default=False,
    help="Where collections live: a directory (default: per-user data dir), or "
         "s3://BUCKET/PREFIX (gs://, az://) for LanceDB collections on object storage.")]
StorageOpt = Annotated[list[str], typer.Option(
    "--storage-option", help="Object storage option KEY=VALUE for Lance (repeatable), e.g. "
    "aws_endpoint=http://127.0.0.1:9000, allow_http=true, aws_region=eu-west-1; "
    "credentials are better left to the AWS_* environment.")]

RayAddressOpt = Annotated[Optional[str], typer.Option(
    "--ray-address", show_default=False,
    help="Ray cluster to join, e.g. ray://head:10001 or auto (implies --ray; default: a "
         "new local one).")]


def storage_options(pairs: list[str]) -> dict[str, str] | None:
    """``["k=v", ...]`` -> ``{"k": "v"}``; None when none were given."""
    from retriever.options import parse_pairs

    return dict(parse_pairs(pairs, "--storage-option")) or None

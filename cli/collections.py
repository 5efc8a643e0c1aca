"""``retriever collections list|info|optimize|verify|shard|delete``."""

from __future__ import annotations

__all__ = ["collections_app"]

import re
from datetime import timedelta
from typing import Annotated, Any

import typer

from . import output
from .location import DataDirOpt, StorageOpt, storage_options

collections_app = typer.Typer(help="List, inspect, optimize, verify, shard and delete collections.",
                              no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout.")]
NameArg = Annotated[str, typer.Argument(help="Collection name.")]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """``90``, ``30s``, ``10m``, ``2h``, ``1d`` -> timedelta (a bare number is seconds)."""
    from retriever.errors import UsageError

    match = _DURATION.match(text.strip().lower())
    if not match:
        raise UsageError(f"--keep {text!r} is not a duration", hint="e.g. 0, 90s, 10m, 2h, 1d")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            break
    return f"{value:.1f} {unit}"


def _storage_lines(storage: dict[str, Any]) -> str:
    if storage["backend"] == "faiss":
        head = (f"generation: {storage['version']} ({storage['versions']} kept on disk)\n"
                f"segments:   {storage['fragments']}")
    else:
        head = (f"version:    {storage['version']} ({storage['versions']} kept on disk)\n"
                f"fragments:  {storage['fragments']}")
    return f"{head}\non disk:    {_size(storage['bytes'])}"


@collections_app.command("list")
def list_collections(data_dir: DataDirOpt = None, storage_option: StorageOpt = [],
                     json_out: JsonOpt = False) -> None:
    """Names of the collections in the data directory."""
    from retriever import Retriever

    names = Retriever.list_collections(data_dir, storage_options(storage_option))
    if json_out:
        output.print_json(names)
    else:
        for name in names:
            typer.echo(name)


@collections_app.command("info")
def info(name: Annotated[str, typer.Argument(help="Collection name.")] = "default",
         data_dir: DataDirOpt = None, storage_option: StorageOpt = [],
         json_out: JsonOpt = False) -> None:
    """Encoder, backend and size of a collection."""
    from retriever import Retriever
    from retriever.maintenance import collection_storage

    with Retriever(name, data_dir=data_dir,
                   storage_options=storage_options(storage_option)) as retriever:
        details = retriever.info()
        storage = collection_storage(retriever)
    details["storage"] = storage.to_dict() if storage is not None else None
    if json_out:
        output.print_json(details)
        return
    enc = details["encoder"]
    typer.echo(f"collection: {details['collection']}\npath:       {details['path']}\n"
               f"backend:    {details['backend']}\n"
               f"encoder:    {enc['name']} ({enc['model_id']}, dim {enc['dim']}, {enc['kind']})\n"
               f"quantization: {details['quantization']}\n"
               f"compressor: {details['compressor'] or 'none'}\n"
               f"documents:  {details['documents']}\npages:      {details['pages']}"
               + (f"\nvectors:    {details['vectors']}" if details["vectors"] is not None
                  else ""))
    if storage is not None:
        typer.echo(_storage_lines(details["storage"]))


@collections_app.command("optimize")
def optimize(name: NameArg = "default",
             keep: Annotated[str, typer.Option(
                 "--keep", help="Keep old versions superseded less than this long ago, for "
                 "searches still reading them: 0, 90s, 10m, 2h, 1d.")] = "10m",
             data_dir: DataDirOpt = None, storage_option: StorageOpt = [],
         json_out: JsonOpt = False) -> None:
    """Merge small fragments, update the full-text index, remove old versions."""
    from retriever import Retriever
    from retriever.maintenance import optimize_collection

    retention = _duration(keep)
    with Retriever(name, data_dir=data_dir,
                   storage_options=storage_options(storage_option)) as retriever:
        report = optimize_collection(retriever, retention)
    if json_out:
        output.print_json(report.to_dict())
        return
    d = report.to_dict()
    parts = "segments:  " if d["backend"] == "faiss" else "fragments: "
    typer.echo(f"optimized collection {name!r} ({d['backend']}) in {d['seconds']:.2f} s\n"
               f"versions:  {d['versions_before']} -> {d['versions_after']} on disk "
               f"({d['versions_removed']} removed, --keep {keep})\n"
               f"{parts}{d['fragments_before']} -> {d['fragments_after']}\n"
               f"on disk:   {_size(d['bytes_before'])} -> {_size(d['bytes_after'])}")


@collections_app.command("verify")
def verify(name: NameArg = "default", data_dir: DataDirOpt = None,
           storage_option: StorageOpt = [],
           json_out: JsonOpt = False) -> None:
    """Check every page and the manifest; exit 1 listing the problems when any."""
    from retriever import Retriever
    from retriever.errors import ExitCode
    from retriever.integrity import verify_collection

    with Retriever(name, data_dir=data_dir,
                   storage_options=storage_options(storage_option)) as retriever:
        report = verify_collection(retriever)
    if json_out:
        output.print_json(report.to_dict())
    else:
        typer.echo(f"collection {name!r} ({report.backend}): {report.pages} pages of "
                   f"{report.documents} documents checked, "
                   f"{len(report.problems) + report.more_problems or 'no'} problem(s)")
        for problem in report.problems:
            typer.echo(f"  problem: {problem}")
        if report.more_problems:
            typer.echo(f"  ... and {report.more_problems} more")
    if not report.ok:
        typer.secho(f"collection {name!r} is damaged; to rebuild it: retriever collections "
                    f"delete {name}, then index its files again", fg="red", err=True)
        raise typer.Exit(ExitCode.ERROR)


@collections_app.command("shard")
def shard(name: NameArg,
          shards: Annotated[int, typer.Option("--shards", "-s", min=1,
                                              help="How many shard collections.")],
          data_dir: DataDirOpt = None, json_out: JsonOpt = False) -> None:
    """Split a collection into NAME.shard-I-of-S collections by doc id hash.

    The stored pages are copied: nothing is encoded again, and NAME is left as it is. A
    re-run copies only the documents missing from their shard."""
    from retriever.distributed import shard_collection

    report = shard_collection(name, shards, data_dir=data_dir)
    if json_out:
        output.print_json(report.to_dict())
        return
    for row in report.to_dict()["shards"]:
        typer.echo(f"{row['name']}: {row['documents']} documents, {row['pages']} pages copied")
    if report.skipped:
        typer.echo(f"{report.skipped} documents were in their shard already")


@collections_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="Collection name.")],
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
           data_dir: DataDirOpt = None, storage_option: StorageOpt = []) -> None:
    """Delete a collection and everything in it."""
    from retriever import Retriever

    if not yes:
        typer.confirm(f"Delete collection {name!r}?", abort=True, err=True)
    Retriever.delete_collection(name, data_dir, storage_options(storage_option))
    typer.echo(f"deleted {name}", err=True)

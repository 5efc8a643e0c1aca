"""How the CLI shows things: JSON lines or plain text on stdout, the rest on stderr."""

from __future__ import annotations

__all__ = ["print_error", "print_hits", "print_index_report", "print_checks", "progress_reporter",
           "print_json"]

import json
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from retriever.errors import RetrieverError


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def print_error(exc: RetrieverError) -> None:
    typer.secho(f"error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.echo(f"hint: {exc.hint}", err=True)


def print_hits(hits: list, json_out: bool) -> None:
    if json_out:
        for hit in hits:
            print_json(hit.to_dict())
        return
    if not hits:
        typer.echo("no results")
        return
    for hit in hits:
        typer.secho(f"{hit.rank}. {hit.source}  page {hit.page}  score {hit.score:.4f}", bold=True)
        for region in hit.regions:
            x0, y0, x1, y1 = region.bbox
            snippet = textwrap.shorten(region.text, width=100, placeholder=" …")
            typer.echo(f"   [{region.score:.3f}] ({x0:.2f},{y0:.2f})-({x1:.2f},{y1:.2f}) {snippet}")
            if region.crop_path:
                typer.echo(f"           crop: {region.crop_path}")


def print_index_report(report: Any, collection: str, json_out: bool) -> None:
    if json_out:
        print_json({"collection": collection, **report.to_dict()})
        return
    typer.echo(
        f"collection {collection!r}: {len(report.indexed)} file(s) indexed ({report.pages} pages), "
        f"{len(report.unchanged)} unchanged, {len(report.replaced)} replaced, "
        f"{len(report.failed)} failed")
    for failure in report.failed:
        typer.secho(f"  failed: {failure}", fg="yellow")


def print_checks(checks: list, json_out: bool) -> None:
    for check in checks:
        if json_out:
            print_json({"name": check.name, "ok": check.ok, "detail": check.detail, "fix": check.fix})
            continue
        mark = typer.style("ok  ", fg="green") if check.ok else typer.style("FAIL", fg="red")
        typer.echo(f"{mark} {check.name}: {check.detail}")
        if not check.ok and check.fix:
            typer.echo(f"     fix: {check.fix}")


@contextmanager
def progress_reporter() -> Iterator[Any]:
    """A progress callback drawing a bar on stderr when it is a terminal, else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[detail]}"),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("indexing", total=None, detail="")

        def report(stage: str, done: int, total: int, detail: str) -> None:
            if stage == "files":
                bar.update(task, completed=done, total=total, detail=detail[-60:])
            else:
                bar.update(task, detail=f"{detail[-50:]} p{done}")

        yield report

"""How the CLI shows things: JSON lines or plain text on stdout, the rest on stderr."""

from __future__ import annotations

__all__ = ["print_error", "print_hits", "print_index_report", "print_checks", "progress_reporter",
           "print_json", "show_library_warnings", "print_interrupted", "print_delete_report",
           "json_line", "print_context"]

import json
import logging
import re
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from retriever.errors import RetrieverError
from retriever.filenames import printable

# A file name that is not valid UTF-8 reaches us with lone surrogates (os.fsdecode); JSON
# writes them as \udcNN escapes, which json.loads turns back into the same str (and
# os.fsencode of it into the name's bytes), while the line itself stays valid UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_line(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def print_json(obj: Any) -> None:
    sys.stdout.write(json_line(obj) + "\n")


def print_error(exc: RetrieverError) -> None:
    typer.secho(f"error: {printable(exc.message)}", fg="red", err=True)
    if exc.hint:
        typer.echo(f"hint: {printable(exc.hint)}", err=True)


class _WarningLine(logging.Handler):
    """``warning: ...`` on the current stderr, like the CLI's own warnings."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.secho(f"warning: {record.getMessage()}", fg="yellow", err=True)


def show_library_warnings() -> None:
    """Print the retriever library's logged warnings (a broken plugin, say) on stderr."""
    logger = logging.getLogger("retriever")
    if not any(isinstance(h, _WarningLine) for h in logger.handlers):
        logger.addHandler(_WarningLine(logging.WARNING))


def print_hits(hits: list, json_out: bool) -> None:
    if json_out:
        for hit in hits:
            print_json(hit.to_dict())
        return
    if not hits:
        typer.echo("no results")
        return
    for hit in hits:
        typer.secho(f"{hit.rank}. {printable(hit.source)}  page {hit.page}  "
                    f"score {hit.score:.4f}", bold=True)
        for region in hit.regions:
            x0, y0, x1, y1 = region.bbox
            snippet = textwrap.shorten(printable(region.text), width=100, placeholder=" …")
            typer.echo(f"   [{region.score:.3f}] ({x0:.2f},{y0:.2f})-({x1:.2f},{y1:.2f}) {snippet}")
            if region.crop_path:
                typer.echo(f"           crop: {printable(region.crop_path)}")


def print_context(ctx: Any, json_out: bool) -> None:
    """``search --context``: the prompt block on stdout (JSON: the whole context), and
    where each citation came from on stderr, so piping stdout gives just the prompt."""
    if json_out:
        print_json(ctx.to_dict())
        return
    if not ctx.citations:
        typer.echo("no results", err=True)
        return
    typer.echo(ctx.prompt_text())
    for c in ctx.citations:
        x0, y0, x1, y1 = c.bbox
        typer.echo(f"{c.label} {printable(c.source)} page {c.page} "
                   f"({x0:.2f},{y0:.2f})-({x1:.2f},{y1:.2f})"
                   + (f" crop: {printable(c.crop_path)}" if c.crop_path else ""), err=True)
    typer.echo(f"{ctx.tokens} of {ctx.budget} tokens ({ctx.tokenizer}), "
               f"{ctx.omitted} region(s) over the budget, {ctx.duplicates} duplicate(s)",
               err=True)
    for warning in ctx.warnings:
        typer.secho(f"warning: {printable(warning)}", fg="yellow", err=True)


def print_index_report(report: Any, collection: str, json_out: bool) -> None:
    if json_out:
        print_json({"collection": collection, **report.to_dict()})
        return
    # moved, copied and removed only when they happened: the usual line stays as it was
    extra = "".join(f", {len(items)} {name}" for name, items in (
        ("moved", report.moved), ("copied", report.copied), ("removed", report.removed))
        if items)
    if getattr(report, "reused_pages", 0):
        extra += f", {report.reused_pages} staged page(s) reused"
    typer.echo(
        f"collection {collection!r}: {len(report.indexed)} file(s) indexed ({report.pages} pages), "
        f"{len(report.unchanged)} unchanged, {len(report.replaced)} replaced{extra}, "
        f"{len(report.failed)} failed")
    for failure in report.failed:
        typer.secho(f"  failed: {printable(str(failure))}", fg="yellow")
    for path in report.removed:
        typer.echo(f"  removed: {printable(path)}")


def print_interrupted(report: Any) -> None:
    """On stderr: what an interrupted ``index`` committed, and how to go on."""
    n = len(report.indexed)
    last = f" (the last: {printable(report.indexed[-1])})" if n else ""
    typer.secho(f"interrupted: {n} document{'' if n == 1 else 's'} committed in this run"
                f"{last}; every committed document is saved whole", fg="yellow", err=True)
    for path in getattr(report, "staged", []):
        typer.echo(f"  kept the pages encoded so far of {printable(path)} (not searchable "
                   "until it is finished)", err=True)
    typer.echo("re-run the same command to resume: unchanged files are skipped and a "
               "half-encoded file goes on where it stopped", err=True)


def print_delete_report(report: Any, collection: str, json_out: bool) -> None:
    if json_out:
        print_json({"collection": collection, **report.to_dict()})
        return
    typer.echo(f"collection {collection!r}: removed {len(report.documents)} document(s) "
               f"({report.pages} page(s)), forgot {len(report.paths)} path(s)")
    for path in report.paths:
        typer.echo(f"  removed: {printable(path)}")
    for target in report.unmatched:
        typer.secho(f"  no match: {printable(target)}", fg="yellow", err=True)


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
                bar.update(task, completed=done, total=total, detail=printable(detail)[-60:])
            else:
                bar.update(task, detail=f"{printable(detail)[-50:]} p{done}")

        yield report

"""The ``retriever`` command line: a thin typer layer over the public SDK.

Data goes to stdout (``--json`` for scripts), progress and diagnostics to stderr, and every
``RetrieverError`` becomes one message, one hint and its exit code, here in one place.
"""

from __future__ import annotations

__all__ = ["app", "main"]

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from retriever import __version__
from retriever.errors import ExitCode, IndexInterrupted, RetrieverError

from . import delete_cmd, output, serve_cmd
from .collections import collections_app
from .location import DataDirOpt, RayAddressOpt, StorageOpt, storage_options
from .eval_cmd import eval_command
from .plugins_cmd import plugins_app

app = typer.Typer(
    name="retriever",
    help="Index PDFs and images, then search them: pages and the regions on them that answer.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(collections_app, name="collections")
app.add_typer(plugins_app, name="plugins")
app.command("eval")(eval_command)
app.command("delete")(delete_cmd.delete)
app.command("serve")(serve_cmd.serve)

CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"retriever {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """vision-retriever: multimodal retrieval with region-level answers."""


def _parse_options(pairs: list[str], flag: str = "--option") -> dict[str, object]:
    # values stay text: the component's declared options type them (retriever.options)
    from retriever.options import parse_pairs

    return dict(parse_pairs(pairs, flag))


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (recursive).")],
    collection: CollectionOpt = "default",
    encoder: Annotated[Optional[str], typer.Option(
        "--encoder", "-e", help="Encoder for a new collection (default text/minilm).")] = None,
    option: Annotated[list[str], typer.Option(
        "--option", "-o", help="Encoder option KEY=VALUE (repeatable), e.g. model=/path.")] = [],
    indexer: Annotated[Optional[str], typer.Option(
        "--indexer", help="Index backend for a new collection: lancedb (default) or faiss.",
        show_default=False)] = None,
    quantization: Annotated[Optional[str], typer.Option(
        "--quantization", help="Codes a new collection keeps for two-stage search: none "
        "(default), int8 or binary.", show_default=False)] = None,
    indexer_option: Annotated[list[str], typer.Option(
        "--indexer-option", "-O", help="Indexer option KEY=VALUE (repeatable), e.g. "
        "index_type=hnsw; see `retriever plugins list`.")] = [],
    compress: Annotated[Optional[str], typer.Option(
        "--compress", help="Compressor a new collection runs on each page's vectors, "
        "NAME[:FACTOR][,KEY=VALUE...]: pool:3, merge:2, prune:3, "
        "pool:3,within_regions=false (options: `retriever plugins list`).",
        show_default=False)] = None,
    include: Annotated[list[str], typer.Option(help="Glob of files to include (repeatable).")] = [],
    exclude: Annotated[list[str], typer.Option(help="Glob of files to skip (repeatable).")] = [],
    ocr: Annotated[bool, typer.Option("--ocr/--no-ocr", help="OCR pages without a text layer.")] = True,
    force: Annotated[bool, typer.Option(help="Re-index files even when unchanged.")] = False,
    sync: Annotated[bool, typer.Option(
        help="Afterwards remove documents whose files under PATH... are gone.")] = False,
    device: Annotated[Optional[str], typer.Option(
        help="Encoder device: auto, cpu, cuda, cuda:N (image encoders).", show_default=False)] = None,
    dtype: Annotated[Optional[str], typer.Option(
        help="Encoder dtype: auto, float32, bfloat16, float16.", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", min=1, help="Pages per encoder batch.", show_default=False)] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", min=0, help="Processes that rasterize, read text and OCR ahead of the "
        "encoder (default: one per core; 0: none).", show_default=False)] = None,
    ray: Annotated[bool, typer.Option(
        "--ray", help="Encode on a Ray cluster (Ray Data; LanceDB collections): a local "
        "one unless --ray-address is given.")] = False,
    ray_address: RayAddressOpt = None,
    ray_encoders: Annotated[Optional[int], typer.Option(
        "--ray-encoders", min=1, help="Encoder actors, one model each (default: one per "
        "GPU, else one per two CPUs; implies --ray).", show_default=False)] = None,
    data_dir: DataDirOpt = None,
    storage_option: StorageOpt = [],
    json_out: JsonOpt = False,
) -> None:
    """Index files into a collection (created on first use)."""
    from retriever import Retriever

    encoder_options = _parse_options(option)
    # Passed only when given, so encoders without these options keep working.
    runtime = {"device": device, "dtype": dtype, "batch_size": batch_size}
    encoder_options.update({k: v for k, v in runtime.items() if v is not None})
    ray_options = None
    if ray or ray_address is not None or ray_encoders is not None:
        from retriever.distributed import RayIndexOptions

        ray_options = RayIndexOptions(address=ray_address, encoders=ray_encoders)
    retriever = Retriever(collection, data_dir=data_dir, encoder=encoder,
                          encoder_options=encoder_options, indexer=indexer,
                          ocr="tesseract" if ocr else None, quantization=quantization,
                          indexer_options=_parse_options(indexer_option, "--indexer-option"),
                          compress=compress,
                          storage_options=storage_options(storage_option))
    try:
        with output.progress_reporter() as progress:
            report = retriever.index(paths, include=include, exclude=exclude, force=force,
                                     sync=sync, progress=progress, workers=workers,
                                     ray=ray_options)
    except IndexInterrupted as stop:  # typer would turn Ctrl-C into a silent exit 130
        output.print_index_report(stop.report, collection, json_out)
        output.print_interrupted(stop.report)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    finally:
        retriever.close()
    output.print_index_report(report, collection, json_out)
    if report.failed:
        done = report.indexed or report.unchanged or report.moved or report.copied
        raise typer.Exit(ExitCode.PARTIAL if done else ExitCode.ERROR)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for, in your own words.")],
    collection: CollectionOpt = "default",
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="Pages to return.")] = 5,
    regions: Annotated[bool, typer.Option("--regions/--no-regions", help="Ground hits to regions.")] = True,
    max_regions: Annotated[int, typer.Option(
        min=0, help="Regions per hit at most (0: no cap).")] = 5,
    region_level: Annotated[Optional[str], typer.Option(
        "--region-level", help="Unit returned: paragraph (default), line, word, or block "
        "(consecutive paragraphs of a column).", show_default=False)] = None,
    select: Annotated[Optional[str], typer.Option(
        "--select", help="Which regions: margin (default: within --margin of the best), "
        "gap (down to the largest score drop), percentile, top_k.", show_default=False)] = None,
    margin: Annotated[Optional[float], typer.Option(
        min=0, help="--select margin: in units of (best - median) score (default 0.7).",
        show_default=False)] = None,
    percentile: Annotated[Optional[float], typer.Option(
        min=0, max=100, help="--select percentile: keep regions at or above it (50: median).",
        show_default=False)] = None,
    min_overlap: Annotated[Optional[float], typer.Option(
        "--min-overlap", min=0, max=1, help="Least share of a vector's box inside a region "
        "for it to count there (default 0: any overlap).", show_default=False)] = None,
    merge: Annotated[Optional[bool], typer.Option(
        "--merge/--no-merge", help="Return adjacent kept regions as one (default: no merge).",
        show_default=False)] = None,
    aggregate: Annotated[Optional[str], typer.Option(
        help="Region score: mean or max of its vectors (default: the encoder's choice).",
        show_default=False)] = None,
    crops: Annotated[Optional[Path], typer.Option(
        help="Save a PNG of every returned region in this directory.", show_default=False)] = None,
    html: Annotated[Optional[Path], typer.Option(
        "--html", help="Also write one self-contained HTML report: each page with its "
        "regions outlined and scored, their text beside.", show_default=False)] = None,
    heatmap: Annotated[bool, typer.Option(
        "--heatmap", help="With --html: shade each page by how relevant each of its "
        "patches is to the query.")] = False,
    rerank: Annotated[Optional[int], typer.Option(
        "--rerank", min=1, help="Quantized collections: pages scored exactly after the "
        "codes' shortlist (default: per format).", show_default=False)] = None,
    indexer_option: Annotated[list[str], typer.Option(
        "--indexer-option", "-O", help="Search-time indexer option KEY=VALUE (repeatable), "
        "e.g. nprobe=16; see `retriever plugins list`.")] = [],
    mode: Annotated[str, typer.Option(
        "--mode", help="hybrid (vectors and full-text fused), vector, or lexical (full-text "
        "only: no model is loaded).")] = "hybrid",
    context: Annotated[bool, typer.Option(
        "--context", help="Print the answering regions as an LLM prompt context: per page "
        "in reading order, numbered citations, deduplicated, within --budget tokens.")] = False,
    budget: Annotated[int, typer.Option(
        "--budget", min=1, help="--context: tokens at most (counted by --tokenizer).")] = 2000,
    tokenizer: Annotated[Optional[str], typer.Option(
        "--tokenizer", help="--context: a Hugging Face tokenizer (local dir or cached name, "
        "offline) to count tokens with (default: an approximation, see README).",
        show_default=False)] = None,
    data_dir: DataDirOpt = None,
    storage_option: StorageOpt = [],
    json_out: JsonOpt = False,
) -> None:
    """Search a collection; prints pages with the regions that answer."""
    from retriever import Retriever

    if aggregate not in (None, "mean", "max"):
        raise RetrieverError(f"--aggregate must be mean or max, not {aggregate!r}")
    if heatmap and html is None:
        from retriever.errors import UsageError

        raise UsageError("--heatmap draws on the HTML report", hint="add --html FILE")
    search_options = _parse_options(indexer_option, "--indexer-option")
    # unset flags stay None and keep the SDK's measured defaults
    grounding = {"level": region_level, "select": select, "margin": margin,
                 "percentile": percentile, "min_overlap": min_overlap, "merge": merge}
    grounding = {k: v for k, v in grounding.items() if v is not None}
    if context:
        with Retriever(collection, data_dir=data_dir,
                       storage_options=storage_options(storage_option)) as retriever:
            ctx = retriever.context(query, k=k, budget=budget, tokenizer=tokenizer,
                                    images="path" if crops is not None else None,
                                    crop_dir=crops, aggregate=aggregate,
                                    max_regions=max_regions, rerank=rerank,
                                    indexer_options=search_options, mode=mode,
                                    grounding=grounding)
        output.print_context(ctx, json_out)
        return
    with Retriever(collection, data_dir=data_dir,
                   storage_options=storage_options(storage_option)) as retriever:
        hits = retriever.search(query, k, regions=regions, aggregate=aggregate,  # type: ignore[arg-type]
                                max_regions=max_regions, rerank=rerank,
                                indexer_options=search_options, mode=mode,  # type: ignore[arg-type]
                                grounding=grounding)
        if html is not None:  # inside: the report reads the collection's stored vectors
            for warning in retriever.render_html(hits, html, heatmap=heatmap, query=query):
                typer.secho(f"warning: {warning}", fg="yellow", err=True)
            typer.echo(f"report written to {html}", err=True)
    if crops is not None:
        from retriever.crops import save_region_crops

        for warning in save_region_crops(hits, crops):
            typer.secho(f"warning: {warning}", fg="yellow", err=True)
    output.print_hits(hits, json_out)


@app.command()
def doctor(json_out: JsonOpt = False) -> None:
    """Check system dependencies (tesseract, poppler) and Python packages."""
    from retriever.doctor import exit_code, run_checks

    checks = run_checks()
    output.print_checks(checks, json_out)
    if not all(c.ok for c in checks):
        raise typer.Exit(exit_code(checks))


def _add_plugin_commands() -> None:
    from retriever.plugin_host import add_commands

    output.show_library_warnings()
    add_commands(app)  # one plugin at a time: a broken one is a warning, not an outage


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: run the app, map errors to messages and exit codes."""
    try:
        _add_plugin_commands()
        app(args=argv, prog_name="retriever", standalone_mode=True)
    except RetrieverError as exc:
        output.print_error(exc)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; every document finished before this point is saved", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except SystemExit as exc:  # typer/click exit with the command's code
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

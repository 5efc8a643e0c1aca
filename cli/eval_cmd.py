"""``retriever eval``: a label-free retrieval-quality benchmark for anyone's documents.

The command only parses options and prints; the work is ``retriever.evaluation.evaluate``.
stdout gets the table (or, with ``--json``, one JSON object per row: system x query kind),
stderr the progress.
"""

from __future__ import annotations

__all__ = ["eval_command", "parse_value"]

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from retriever.errors import UsageError


def parse_value(text: str) -> Any:
    """KEY=VALUE values: int, float, true/false, none, else the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _pairs(pairs: list[str], flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"bad {flag} {pair!r}",
                             hint=f"use KEY=VALUE, e.g. {flag} max_regions=5")
        out[key.strip()] = parse_value(value)
    return out


def _log(message: str) -> None:
    typer.echo(message, err=True)


def eval_command(
    paths: Annotated[list[Path], typer.Argument(help="PDFs, images or folders to evaluate on.")],
    queries: Annotated[list[Path], typer.Option(
        "--queries", "-q", help="JSONL of hand-written queries (text, source, page, bbox); "
        "repeatable.")] = [],
    generate: Annotated[bool, typer.Option(
        "--generate/--no-generate", help="Make phrase and keyword queries from the PDFs' "
        "text layer.")] = True,
    max_queries: Annotated[int, typer.Option(
        "--max-queries", min=0, help="Generated queries per kind at most.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the query sampling.")] = 0,
    as_images: Annotated[bool, typer.Option(
        "--as-images", help="Index PDFs re-rendered as PNGs without text (through OCR).")] = False,
    k: Annotated[int, typer.Option("-k", "--top-k", min=1, help="Pages retrieved per query.")] = 10,
    systems: Annotated[str, typer.Option(
        help="Comma list of systems: ours, bm25 (BM25 over page text), chunks (MiniLM over "
        "500-char chunks).")] = "ours,bm25,chunks",
    search_option: Annotated[list[str], typer.Option(
        "--search-option", "-s", help="Passed to Retriever.search as KEY=VALUE (repeatable; "
        "default max_regions=5, 0 = all above the median).")] = [],
    collection: Annotated[str, typer.Option(
        "--collection", "-c", help="Collection name.")] = "eval",
    data_dir: Annotated[Optional[Path], typer.Option(
        "--data-dir", help="Keep the collection here (default: a temporary directory).",
        show_default=False)] = None,
    encoder: Annotated[Optional[str], typer.Option(
        "--encoder", "-e", help="Encoder of our system (default text/minilm).")] = None,
    option: Annotated[list[str], typer.Option(
        "--option", "-o", help="Encoder option KEY=VALUE (repeatable).")] = [],
    ocr: Annotated[bool, typer.Option("--ocr/--no-ocr", help="OCR pages without text.")] = True,
    details: Annotated[Optional[Path], typer.Option(
        help="Write every query's outcome per system to this JSONL file.",
        show_default=False)] = None,
    save_queries: Annotated[Optional[Path], typer.Option(
        "--save-queries", help="Write the evaluated queries (with their truth) as JSONL.",
        show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
) -> None:
    """Measure retrieval quality on your own documents: ours vs BM25 vs chunked MiniLM.

    Generated queries: an exact phrase and shuffled keywords per sampled paragraph.

    Hand-written queries: --queries FILE.jsonl with text, source, page and bbox per line.

    Reports page recall@1/5/10 and MRR, and on the right page the returned regions' IoU.
    """
    from retriever.evaluation import (
        DEFAULT_SEARCH_OPTIONS,
        EvalConfig,
        evaluate,
        format_table,
        write_queries,
    )

    names = [s.strip() for s in systems.split(",") if s.strip()]
    search_options = {**DEFAULT_SEARCH_OPTIONS, **_pairs(search_option, "-s")}
    config = EvalConfig(
        paths=paths, query_files=queries, generate=generate, max_queries=max_queries,
        seed=seed, as_images=as_images, k=k, systems=names, collection=collection,
        data_dir=data_dir, encoder=encoder, encoder_options=_pairs(option, "-o"),
        search_options=search_options, ocr=ocr)
    result = evaluate(config, log=_log)
    if save_queries is not None:
        seen: dict[str, Any] = {}
        for outcome in result.outcomes:
            seen.setdefault(outcome.query.id, outcome.query)
        write_queries(save_queries, list(seen.values()))
    if details is not None:
        with details.open("w", encoding="utf-8") as fh:
            for outcome in result.outcomes:
                fh.write(json.dumps(outcome.to_dict(), ensure_ascii=False) + "\n")
    if json_out:
        for row in result.rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    info = result.info
    typer.echo(f"{info['files']} file(s), {info['pages']} page(s); queries per kind: "
               f"{info['queries']}")
    typer.echo(format_table(result.rows))

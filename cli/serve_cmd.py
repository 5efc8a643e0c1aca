"""``retriever serve``: the HTTP server (``retriever.server``), with safe defaults."""

from __future__ import annotations

__all__ = ["serve"]

from pathlib import Path
from typing import Annotated, Optional

import typer

from .location import RayAddressOpt


def serve(
    host: Annotated[str, typer.Option(
        help="Address to bind; anything but loopback needs --api-key-env.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8765,
    api_key_env: Annotated[Optional[str], typer.Option(
        "--api-key-env", help="Name of the environment variable holding the API key; "
        "with one, every route but /healthz needs it.", show_default=False)] = None,
    encoder: Annotated[Optional[str], typer.Option(
        "--encoder", "-e", help="Encoder of collections created by an upload "
        "(default text/minilm).", show_default=False)] = None,
    max_upload_mb: Annotated[float, typer.Option(
        "--max-upload-mb", min=0.001, help="Largest upload request; larger ones get 413.")] = 100.0,
    tokenizer: Annotated[Optional[str], typer.Option(
        "--tokenizer", help="Hugging Face tokenizer (local dir or cached name) /context "
        "counts its budget with (default: the approximation).", show_default=False)] = None,
    ocr: Annotated[bool, typer.Option("--ocr/--no-ocr", help="OCR uploads without a text layer.")] = True,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    ray: Annotated[bool, typer.Option(
        "--ray", help="Serve each collection split into shards (`collections shard`) as "
        "one, searched by one Ray actor per shard.")] = False,
    ray_address: RayAddressOpt = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        "--data-dir", envvar="RETRIEVER_HOME", help="Where collections (and uploads) live.",
        show_default=False)] = None,
) -> None:
    """Serve search, context, uploads and deletes over HTTP (FastAPI + uvicorn), and a
    search page for a browser at /."""
    from retriever.server.run import serve as run

    run(host, port, api_key_env=api_key_env, data_dir=data_dir, log_level=log_level,
        encoder=encoder, max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        tokenizer=tokenizer, ocr="tesseract" if ocr else None, ray=ray,
        ray_address=ray_address)

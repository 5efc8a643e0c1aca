"""The parts of ``benchmarks/ingest.py`` (and its memory probe), made the way the SDK
makes them: the default encoder and OCR engine, a LanceDB indexer, document jobs."""

from __future__ import annotations

__all__ = ["encoder_for", "ocr_engine", "lancedb_indexer", "warm", "jobs_for"]

import shutil
from pathlib import Path


def encoder_for(threads: int):
    import torch

    from retriever.plugin_host import get_registry

    torch.set_num_threads(threads)
    return get_registry().create("encoder", "text/minilm")


def ocr_engine():
    from retriever.plugin_host import get_registry

    engine = get_registry().create("ocr", "tesseract")
    engine.check_available()
    return engine


def lancedb_indexer(encoder, where: Path):
    from retriever.manifest import Manifest
    from retriever.plugin_host import get_registry

    shutil.rmtree(where, ignore_errors=True)
    spec = get_registry().get("indexer", "lancedb")
    return spec.create(path=where, manifest=Manifest(encoder=encoder.identity,
                                                     indexer="lancedb"))


def warm(encoder) -> None:
    """Load the model (and its ONNX export) before any clock starts."""
    from retriever.types import Page, Region

    page = Page("0" * 20, "warm", 1, 100, 100,
                regions=[Region((0.1, 0.1, 0.9, 0.2), "warm up the model", "paragraph")])
    encoder.encode_pages([page])


def jobs_for(files: list[Path]):
    from retriever.ingest import content_hash
    from retriever.ingest.producer import DocumentJob

    return [DocumentJob(f, content_hash(f), str(f)) for f in files]

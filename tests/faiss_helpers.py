"""Small builders the FAISS backend's tests share: a manifest, an open collection, pages
and queries of random unit vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retriever import plugin_host
from retriever.manifest import EncoderIdentity, Manifest
from retriever.types import MultiVector, PageRecord, Region


def manifest(kind: str, dim: int) -> Manifest:
    enc = EncoderIdentity(name=f"test/{kind}", model_id="random", revision="r1", dim=dim,
                          kind=kind)
    return Manifest(encoder=enc, indexer="faiss")


def open_faiss(path: Path, man: Manifest | None = None, **options):
    return plugin_host.get_registry().create("indexer", "faiss", path=path, manifest=man,
                                             **options)


def normalized(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def page(doc: str, vectors: np.ndarray, number: int = 1) -> PageRecord:
    n = vectors.shape[0]
    boxes = np.tile(np.array([[0.1, 0.1, 0.2, 0.2]], np.float32), (n, 1))
    region = Region((0.1, 0.1, 0.9, 0.2), f"{doc} text", source="text_layer")
    return PageRecord(doc_id=doc, source=f"/data/{doc}.pdf", page_number=number, width=600,
                      height=800, embedding=MultiVector(vectors, boxes), regions=[region])


def query(vectors: np.ndarray) -> MultiVector:
    return MultiVector(vectors, np.zeros((vectors.shape[0], 4), np.float32))

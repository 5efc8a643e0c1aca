"""Page records in and out of segments: validation, writing a batch, merging segments."""

from __future__ import annotations

__all__ = ["validate_records", "write_records", "merge_segments", "staged_chunks"]

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from retriever.manifest import Manifest
from retriever.records import check_records, record_paths
from retriever.staging import StagedDocument, staged_batches
from retriever.types import PageRecord

from . import segment_codes, store
from .ann import MAX_VECTORS_PER_PAGE
from .store import Segment


def validate_records(records: Sequence[PageRecord], manifest: Manifest, name: str) -> None:
    """Check every record before anything is written, so a bad one adds nothing."""
    check_records(records, manifest, name, max_vectors_per_page=MAX_VECTORS_PER_PAGE - 1)


#: pages per segment when a staged document is committed: memory stays about this many
#: pages (read back from the staging area), however long the document
STAGED_SEGMENT_PAGES = 256


def staged_chunks(staged: Sequence[StagedDocument], paths: Mapping[str, Sequence[str]],
                  manifest: Manifest, name: str) -> Iterator[list[PageRecord]]:
    """The staged documents' pages, checked and given their paths, in segment-sized
    chunks, read lazily while the commit writes them."""
    chunk: list[PageRecord] = []
    for batch in staged_batches(staged, paths,
                                lambda b: validate_records(b, manifest, name)):
        if chunk and (chunk[0].doc_id != batch[0].doc_id
                      or len(chunk) + len(batch) > STAGED_SEGMENT_PAGES):
            yield chunk
            chunk = []
        chunk.extend(batch)
    if chunk:
        yield chunk


def write_records(path: Path, name: str, records: Sequence[PageRecord], ids: np.ndarray,
                  dtype: str, dim: int, quantization: str = "none") -> Segment:
    """Write ``records`` (page ids ``ids``) as segment ``name``; -> it, memory-mapped.
    A quantized collection's segment gets its codes file too (``segment_codes``)."""
    counts = np.array([r.embedding.n for r in records], dtype=np.int64)  # (P,)
    if counts.sum():
        vectors = np.concatenate([r.embedding.vectors for r in records]).astype(dtype)  # (N, d)
        boxes = np.concatenate([r.embedding.boxes for r in records]).astype(np.float32)  # (N, 4)
    else:
        vectors, boxes = np.zeros((0, dim), dtype), np.zeros((0, 4), np.float32)
    # paths are JSON strings: json escapes the lone surrogates of a name that is not valid
    # UTF-8 (\udcff) and reads them back, so any file name survives exactly
    metas = [{"doc_id": r.doc_id, "source": record_paths(r)[0], "paths": list(record_paths(r)),
              "page_number": r.page_number, "width": r.width, "height": r.height,
              "has_text_layer": r.has_text_layer,
              # a compressor's member counts: small next to the vectors, and kept with the
              # page's other per-page facts (merges and compaction carry them along)
              **({} if r.embedding.counts is None
                 else {"counts": r.embedding.counts.tolist()})}
             for r in records]
    offsets = np.concatenate(([0], np.cumsum(counts)))
    store.write_segment(path, name, ids, metas, [r.regions for r in records], vectors, boxes,
                        offsets)
    if quantization != "none":
        segment_codes.write_codes(path, name, vectors, offsets, quantization)
    return store.load_segment(path, name)  # memory-mapped from here on


def merge_segments(path: Path, name: str, segments: Sequence[Segment], plan: Sequence[str],
                   deleted: set[int], quantization: str = "none"
                   ) -> tuple[list[Segment], set[int]]:
    """Write the live pages of the ``plan`` segments as segment ``name``.

    Returns the new segment (none when every page was deleted) and the deleted page ids
    that no longer exist anywhere, which the generation can then forget.
    """
    chosen = [s for s in segments if s.name in plan]
    dropped = {p for s in chosen for p in s.page_ids.tolist() if p in deleted}
    keep = [(s, r) for s in chosen for r in range(len(s)) if int(s.page_ids[r]) not in deleted]
    if not keep:
        return [], dropped
    spans = [(s, int(s.offsets[r]), int(s.offsets[r + 1])) for s, r in keep]
    counts = np.array([b - a for _, a, b in spans], dtype=np.int64)  # (P,)
    vectors = np.concatenate([s.vectors[a:b] for s, a, b in spans])  # (N, d), stored dtype
    boxes = np.concatenate([s.boxes[a:b] for s, a, b in spans])  # (N, 4)
    metas = [{k: v for k, v in s.metas[r].items() if k != "page_id"} for s, r in keep]
    ids = np.array([s.page_ids[r] for s, r in keep], dtype=np.int64)  # ids survive merges
    offsets = np.concatenate(([0], np.cumsum(counts)))
    store.write_segment(path, name, ids, metas, [s.regions[r] for s, r in keep], vectors,
                        boxes, offsets)
    if quantization != "none":
        segment_codes.write_merged_codes(path, name, keep, vectors, offsets, quantization)
    return [store.load_segment(path, name)], dropped

"""The on-disk layout of a FAISS collection: immutable segments, generations, a pointer.

A collection directory holds::

    manifest.json                 the Manifest (written once, when the collection is made)
    CURRENT                       the name of the current generation file (replaced last)
    gen-00000007.json             a generation: its segments, deleted page ids, its index
    seg-00000007-0.vectors.npy    (n_vectors, dim) float16/float32, pages back to back
    seg-00000007-0.boxes.npy      (n_vectors, 4) float32
    seg-00000007-0.offsets.npy    (n_pages + 1,) int64: page p owns rows offsets[p]:[p+1]
    seg-00000007-0.pages.jsonl    one line per page: page id, identity, size, regions
    seg-00000007-0.codes-binary.npz  a quantized collection's codes of the segment (optional)
    index-00000007.faiss          the FAISS index (faiss.write_index; no pickle anywhere)
    index-00000007.pages.npy      (n_pages, 2) int64: page id and vector count in the index

Files are never modified after they are written. A commit writes the new segment (and,
when due, a new index) under new names, then a new generation file, then replaces
``CURRENT``: that one rename is the commit point, so a crash at any moment leaves either the
old generation or the new one. Files no generation points at are debris, removed by the
next commit. Pages are identified by a page id that never changes or gets reused, so a
segment can be merged into another without touching the index.
"""

from __future__ import annotations

__all__ = [
    "CURRENT",
    "MANIFEST",
    "Generation",
    "Segment",
    "collect_after_failure",
    "collect_garbage",
    "create_collection",
    "load_segment",
    "merge_plan",
    "read_current",
    "read_generation",
    "read_manifest",
    "segment_files",
    "code_file",
    "write_generation",
    "write_segment",
]

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retriever.errors import RetrieverError
from retriever.manifest import Manifest
from retriever.search.quantization import QUANTIZATIONS
from retriever.regions.columns import LazyRegions, regions_object
from retriever.types import Region

from . import files

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
FORMAT = 1
_SEGMENT_SUFFIXES = (".vectors.npy", ".boxes.npy", ".offsets.npy", ".pages.jsonl")
#: more segments than this get merged at the next commit, down to _MERGE_DOWN_TO
_MAX_SEGMENTS = 12
_MERGE_DOWN_TO = 4
#: a segment whose pages are mostly deleted is rewritten without them
_MAX_DEAD_FRACTION = 0.5


@dataclass(frozen=True)
class Generation:
    """One committed state of the collection (the content of a ``gen-*.json``)."""

    number: int
    dtype: str
    next_page_id: int = 0
    segments: tuple[str, ...] = ()
    deleted: frozenset[int] = frozenset()
    #: {"file", "pages", "type", "trained_on"} of the saved FAISS index, or None
    index: dict[str, Any] | None = None
    #: the index type asked for: "auto" or an explicit type
    index_request: str = "auto"

    @property
    def file_name(self) -> str:
        return f"gen-{self.number:08d}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "number": self.number, "dtype": self.dtype,
            "next_page_id": self.next_page_id, "segments": list(self.segments),
            "deleted": sorted(self.deleted), "index": self.index,
            "index_request": self.index_request,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Generation:
        if data.get("format") != FORMAT:
            raise RetrieverError(f"unknown FAISS collection format {data.get('format')!r}",
                                 hint="upgrade vision-retriever")
        return cls(number=int(data["number"]), dtype=str(data["dtype"]),
                   next_page_id=int(data["next_page_id"]), segments=tuple(data["segments"]),
                   deleted=frozenset(int(i) for i in data["deleted"]), index=data["index"],
                   index_request=str(data.get("index_request", "auto")))


@dataclass(frozen=True)
class Segment:
    """Pages written together: metadata in memory, vectors memory-mapped read-only."""

    name: str
    page_ids: np.ndarray  # (P,) int64
    metas: list[dict[str, Any]]  # per page: doc_id, source, page_number, width, height, ...
    vectors: np.ndarray  # (N, dim) float16 or float32
    boxes: np.ndarray  # (N, 4) float32
    offsets: np.ndarray  # (P+1,) int64
    # per page, parsed on first use (a segment of old tree-form lines reads the same)
    regions: list[Sequence[Region]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.page_ids.size)


def segment_files(name: str) -> list[str]:
    return [name + suffix for suffix in _SEGMENT_SUFFIXES]


def code_file(name: str, quantization: str) -> str:
    """The optional codes file of segment ``name`` (``segment_codes``): derived from its
    vectors, so a segment is whole without it."""
    return f"{name}.codes-{quantization}.npz"


# -- reading ----------------------------------------------------------------------------


def read_manifest(path: Path) -> Manifest | None:
    try:
        text = (path / MANIFEST).read_text()
    except FileNotFoundError:
        return None
    return Manifest.from_json(text)


def read_current(path: Path) -> str | None:
    """The current generation's file name; None for a collection still being created."""
    try:
        name = (path / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    if not (name.startswith("gen-") and name.endswith(".json") and "/" not in name):
        raise RetrieverError(f"{path / CURRENT} is damaged (it holds {name[:40]!r})")
    return name


def read_generation(path: Path, name: str) -> Generation:
    try:
        data = json.loads((path / name).read_text())
    except ValueError as exc:
        raise RetrieverError(f"{path / name} is unreadable: {exc}") from exc
    return Generation.from_json(data)


def load_segment(path: Path, name: str) -> Segment:
    vectors = files.load_npy(path / f"{name}.vectors.npy", mmap=True)
    boxes = files.load_npy(path / f"{name}.boxes.npy", mmap=True)
    offsets = files.load_npy(path / f"{name}.offsets.npy").astype(np.int64)
    metas = [json.loads(line) for line in (path / f"{name}.pages.jsonl").read_text().splitlines()
             if line]
    if len(metas) + 1 != offsets.size or int(offsets[-1]) != vectors.shape[0]:
        raise RetrieverError(f"segment {name} in {path} is inconsistent",
                             hint="restore the collection from a backup or re-index")
    regions: list[Sequence[Region]] = [LazyRegions(m.pop("regions")) for m in metas]
    page_ids = np.array([m["page_id"] for m in metas], dtype=np.int64)
    return Segment(name, page_ids, metas, vectors, boxes, offsets, regions)


# -- writing ----------------------------------------------------------------------------


def create_collection(path: Path, manifest: Manifest, dtype: str) -> None:
    """Make an empty collection: generation 0 and ``CURRENT`` first, the manifest last.

    A directory without ``manifest.json`` is not a collection, so a crash halfway leaves
    nothing that opens; creating it again simply overwrites the pieces.
    """
    path.mkdir(parents=True, exist_ok=True)
    gen = Generation(number=0, dtype=dtype)
    write_generation(path, gen)
    files.write_json(path / MANIFEST, json.loads(manifest.to_json()))


def write_generation(path: Path, gen: Generation) -> None:
    """Write the generation file, then point ``CURRENT`` at it: the commit point."""
    files.write_json(path / gen.file_name, gen.to_json())
    files.write_bytes(path / CURRENT, (gen.file_name + "\n").encode())


def write_segment(
    path: Path,
    name: str,
    page_ids: np.ndarray,
    metas: Sequence[dict[str, Any]],
    regions: Sequence[Sequence[Region]],
    vectors: np.ndarray,
    boxes: np.ndarray,
    offsets: np.ndarray,
) -> Segment:
    """Write one segment's four files; the caller commits them by naming the segment."""
    lines = []
    for pid, meta, regs in zip(page_ids.tolist(), metas, regions):
        entry = {**meta, "page_id": int(pid), "regions": regions_object(regs)}
        lines.append(json.dumps(entry, sort_keys=True))
    files.write_npy(path / f"{name}.vectors.npy", vectors)
    files.write_npy(path / f"{name}.boxes.npy", boxes.astype(np.float32, copy=False))
    files.write_npy(path / f"{name}.offsets.npy", offsets.astype(np.int64, copy=False))
    files.write_bytes(path / f"{name}.pages.jsonl", ("\n".join(lines) + "\n").encode())
    metas = [{**m, "page_id": int(p)} for m, p in zip(metas, page_ids.tolist())]
    return Segment(name, page_ids.astype(np.int64), list(metas), vectors, boxes, offsets,
                   [LazyRegions.of(r) for r in regions])


def merge_plan(segments: Sequence[Segment], deleted: frozenset[int]) -> list[str]:
    """Segments to rewrite as one: the smallest when there are too many, and the mostly dead.

    Merging the smallest ones keeps the segment count bounded while each page is rewritten
    only a few times over the collection's life (sizes grow geometrically, as in an LSM tree).
    """
    live = {s.name: int(np.isin(s.page_ids, list(deleted), invert=True).sum()) if deleted
            else len(s) for s in segments}
    chosen = {s.name for s in segments
              if len(s) and (len(s) - live[s.name]) > _MAX_DEAD_FRACTION * len(s)}
    if len(segments) > _MAX_SEGMENTS:
        by_size = sorted(segments, key=lambda s: live[s.name])
        chosen |= {s.name for s in by_size[: len(segments) - _MERGE_DOWN_TO + 1]}
    return [s.name for s in segments if s.name in chosen]


def collect_garbage(path: Path, gen: Generation) -> None:
    """Remove every collection file the generation ``gen`` does not reference.

    Called under the write lock, so no other writer has files in flight; a reader that
    loses a file it was about to open retries from ``CURRENT``.
    """
    keep = {CURRENT, MANIFEST, files.LOCK_NAME, gen.file_name}
    for seg in gen.segments:
        keep.update(segment_files(seg))
        keep.update(code_file(seg, q) for q in QUANTIZATIONS if q != "none")
    if gen.index:
        keep.update((gen.index["file"], gen.index["pages"]))
    removed = False
    for entry in path.iterdir():
        name = entry.name
        ours = name.startswith(("gen-", "seg-", "index-")) or files.TMP_MARK in name
        if ours and name not in keep and entry.is_file():
            entry.unlink(missing_ok=True)
            removed = True
    if removed:
        files.fsync_dir(path)


def collect_after_failure(path: Path) -> None:
    """Remove what a failed commit left; the current generation keeps all of its files."""
    try:
        name = read_current(path)
        if name:
            collect_garbage(path, read_generation(path, name))
    except (OSError, RetrieverError):
        pass  # the next successful commit collects it

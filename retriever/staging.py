"""Page batches of documents being indexed, kept on disk until the document is whole.

Why: a long document used to be encoded whole in memory and written in one commit at the
end, so a crash on page 999 lost 998 encoded pages and memory grew with the document.
Now each encoded batch of pages is written here as soon as it is ready, and the document
enters the collection in one commit once its last page is staged (``Indexer.replace``
reads the batches back one at a time). Search never sees a staged page, so a
half-indexed document is never returned, and a run that was killed resumes by encoding
only the pages not staged yet.

Layout, under the collection's ``staging/`` directory::

    <doc_id>/p000001.npz     one batch: its first page number in the name
    <doc_id>/p000009.npz

Each ``.npz`` holds ``vectors`` (N, d), ``boxes`` (N, 4), ``counts`` (N,) when a compressor
merged vectors, ``offsets`` (P+1,),
``page_numbers`` and ``region_counts`` (P,), and ``meta``, UTF-8 JSON bytes: one object
per page (number, size, text-layer flag, source, regions in the stored column form). Files are written atomically (``fileio.py``) and read
with ``allow_pickle=False``; staged content is keyed by the document's content hash and
only ever written by the collection's encoder, so a batch found here is valid for any
later run on the same collection.
"""

from __future__ import annotations

__all__ = ["STAGING_DIR", "Staging", "StagedDocument", "staged_batches"]

import io
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RetrieverError
from .fileio import TMP_MARK, atomic_write, fsync_dir
from .records import with_paths
from .regions.columns import LazyRegions, regions_object
from .types import MultiVector, PageRecord

log = logging.getLogger(__name__)

STAGING_DIR = "staging"
_BATCH_NAME = re.compile(r"^p(\d{6,})\.npz$")
_DOC_ID = re.compile(r"^[0-9A-Za-z_.-]+$")  # content hashes; never a path component trick


@dataclass(frozen=True)
class StagedDocument:
    """What ``Indexer.replace(..., staged=...)`` commits: every staged page of ``doc_id``,
    read back one batch at a time."""

    staging: Staging
    doc_id: str
    pages: frozenset[int]

    def __len__(self) -> int:
        return len(self.pages)

    def batches(self) -> Iterator[list[PageRecord]]:
        yield from self.staging.batches(self.doc_id)


def staged_batches(staged: Sequence[StagedDocument], paths: Mapping[str, Sequence[str]],
                   check: Callable[[list[PageRecord]], None]) -> Iterator[list[PageRecord]]:
    """What an indexer's commit writes of ``staged``: each batch read back, checked
    (``check`` raises to abort the commit) and given its document's new paths."""
    for document in staged:
        for batch in document.batches():
            check(batch)
            yield with_paths(batch, paths)


class Staging:
    """The staging area of one collection (a directory; created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dir(self, doc_id: str) -> Path:
        if not _DOC_ID.match(doc_id):
            raise RetrieverError(f"cannot stage document id {doc_id!r}")
        return self.root / doc_id

    def _files(self, doc_id: str) -> list[tuple[int, Path]]:
        folder = self._dir(doc_id)
        if not folder.is_dir():
            return []
        found = []
        for entry in folder.iterdir():
            match = _BATCH_NAME.match(entry.name)
            if match and entry.is_file():
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def documents(self) -> list[str]:
        """Documents with at least one staged batch."""
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir()
                      if d.is_dir() and _DOC_ID.match(d.name) and self._files(d.name))

    def pages(self, doc_id: str) -> frozenset[int]:
        """Page numbers of ``doc_id`` staged so far (an unreadable batch counts as none:
        its pages are encoded again)."""
        out: set[int] = set()
        for _, path in self._files(doc_id):
            try:
                out.update(_read_column(path, "page_numbers").tolist())
            except (OSError, ValueError, KeyError) as exc:
                log.warning("ignoring unreadable staged batch %s: %s", path, exc)
                path.unlink(missing_ok=True)
        return frozenset(out)

    def source(self, doc_id: str) -> str | None:
        """The path the staged pages of ``doc_id`` were read from (None: unreadable)."""
        for _, path in self._files(doc_id):
            try:
                return str(_read_meta(path)[0]["source"])
            except (OSError, ValueError, KeyError, IndexError):
                continue
        return None

    def has_text(self, doc_id: str) -> bool:
        """Whether any staged page of ``doc_id`` has regions."""
        return any(_read_column(path, "region_counts").any()
                   for _, path in self._files(doc_id))

    def add(self, records: Sequence[PageRecord]) -> None:
        """Stage one batch of pages of one document (atomic: all of it or none)."""
        if not records:
            return
        doc_ids = {r.doc_id for r in records}
        if len(doc_ids) != 1:
            raise RetrieverError(f"a staged batch holds one document, got {len(doc_ids)}")
        folder = self._dir(records[0].doc_id)
        folder.mkdir(parents=True, exist_ok=True)
        first = min(r.page_number for r in records)
        data = _encode(records)
        atomic_write(folder / f"p{first:06d}.npz", lambda f: f.write(data))

    def batches(self, doc_id: str) -> Iterator[list[PageRecord]]:
        """The staged pages of ``doc_id`` in page order, one batch per file."""
        seen: set[int] = set()
        for _, path in self._files(doc_id):
            batch = [r for r in _decode(path, doc_id) if r.page_number not in seen]
            seen.update(r.page_number for r in batch)
            if batch:
                yield batch

    def discard(self, doc_id: str) -> None:
        """Forget the staged pages of ``doc_id`` (after its commit, or when it failed)."""
        folder = self._dir(doc_id)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            fsync_dir(self.root)

    def clear_debris(self) -> None:
        """Remove temporary files left by a write that was killed."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir():
                for entry in folder.iterdir():
                    if TMP_MARK in entry.name:
                        entry.unlink(missing_ok=True)


def _encode(records: Sequence[PageRecord]) -> bytes:
    counts = [r.embedding.n for r in records]
    dim = records[0].embedding.dim
    vectors = (np.concatenate([r.embedding.vectors for r in records]) if sum(counts)
               else np.zeros((0, dim), np.float32))
    boxes = (np.concatenate([r.embedding.boxes for r in records]) if sum(counts)
             else np.zeros((0, 4), np.float32))
    meta = [{"page_number": r.page_number, "width": r.width, "height": r.height,
             "has_text_layer": r.has_text_layer, "source": r.source, "paths": list(r.paths),
             "regions": regions_object(r.regions)}
            for r in records]
    extra = {}
    if any(r.embedding.counts is not None for r in records):  # a compressed collection
        extra["counts"] = (np.concatenate([r.embedding.weights() for r in records])
                           .astype(np.int32) if sum(counts) else np.zeros(0, np.int32))
    buffer = io.BytesIO()
    # page numbers and region counts also as small arrays: resume planning reads only
    # these, never the regions' JSON
    np.savez(buffer, vectors=vectors, boxes=boxes.astype(np.float32), **extra,
             page_numbers=np.array([r.page_number for r in records], np.int64),
             region_counts=np.array([len(r.regions) for r in records], np.int64),
             offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
             meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8))
    return buffer.getvalue()


def _read_column(path: Path, name: str) -> np.ndarray:
    with np.load(path, allow_pickle=False) as data:  # reads this member only
        return data[name]


def _read_meta(path: Path) -> list[dict]:
    with np.load(path, allow_pickle=False) as data:
        return json.loads(data["meta"].tobytes().decode("utf-8"))


def _decode(path: Path, doc_id: str) -> list[PageRecord]:
    try:
        with np.load(path, allow_pickle=False) as data:
            vectors, boxes, offsets = data["vectors"], data["boxes"], data["offsets"]
            counts = data["counts"] if "counts" in data.files else None
            meta = json.loads(data["meta"].tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise RetrieverError(f"staged batch {path} is unreadable: {exc}",
                             hint="re-run the same command: that document is encoded again"
                             ) from exc
    out = []
    for i, page in enumerate(meta):
        a, b = int(offsets[i]), int(offsets[i + 1])
        out.append(PageRecord(
            doc_id=doc_id, source=page["source"], page_number=int(page["page_number"]),
            width=int(page["width"]), height=int(page["height"]),
            embedding=MultiVector(vectors[a:b], boxes[a:b], check_norm=False,
                                  counts=None if counts is None else counts[a:b]),
            regions=LazyRegions(page["regions"]), has_text_layer=bool(page["has_text_layer"]),
            paths=tuple(page.get("paths") or ())))
    return out

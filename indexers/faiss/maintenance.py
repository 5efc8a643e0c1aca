"""Storage upkeep of a FAISS collection: stats, optimize, verify, the check on open.

A mixin of ``FaissIndexer`` (``MaintainableIndexer``), kept apart so the indexer stays
about its reads and writes. Commits already merge segments (``store.merge_plan``) and
remove the files of old generations (``store.collect_garbage``); ``optimize`` goes
further: one segment without deleted pages and a FAISS index rebuilt without tombstones,
and in a quantized collection a codes file for every segment that lacks a usable one.
Old generations go at once, whatever ``keep`` says: a reader that loses a file retries
from ``CURRENT``, and files it has mapped stay readable after they are unlinked.
"""

from __future__ import annotations

__all__ = ["FaissMaintenance"]

import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retriever.errors import RetrieverError
from retriever.integrity import PageChecker, VerifyReport, short
from retriever.maintenance import OptimizeReport, StorageStats, disk_bytes

from . import segment_codes, store
from .ann import TokenIndex
from .store import Generation, Segment

if TYPE_CHECKING:
    from .indexer import FaissIndexer

_RETRIES = 5  # a writer may replace the generation while we look: read CURRENT again


def _generation_files(path: Path) -> set[str]:
    return {e.name for e in path.iterdir()
            if e.name.startswith("gen-") and e.name.endswith(".json")}


class FaissMaintenance:
    """``stats``, ``storage_stats``, ``optimize``, ``verify`` and ``check_readable`` of
    one collection."""

    def stats(self: FaissIndexer) -> dict[str, Any]:
        """The committed generation, pages, vectors, segments and the FAISS index in use
        (``index_type`` None: exact MaxSim without an index)."""
        with self._lock:
            view, index = self._fresh(), self._index
            saved = view.generation.index
            return {
                "generation": view.generation.number, "pages": len(view),
                "vectors": view.n_vectors, "segments": len(view.segments),
                "dtype": view.generation.dtype, "index_type": index.kind if index else None,
                "index_vectors": index.ntotal if index else 0,
                "tombstoned_pages": len(index.dead) if index else 0,
                "saved_index": saved["file"] if saved else None,
            }

    def storage_stats(self: FaissIndexer) -> StorageStats:
        with self._lock:
            view, index = self._fresh(), self._index
        gen = view.generation
        live = np.bincount(view.seg, minlength=len(view.segments))  # (segments,) pages
        return StorageStats(
            backend="faiss", version=gen.number, versions=len(_generation_files(self.path)),
            fragments=len(view.segments), pages=len(view),
            unmerged_pages=len(view) - int(live.max()) if live.size else 0,
            bytes=disk_bytes(self.path),
            details={"generation": gen.number, "vectors": view.n_vectors,
                     "deleted_pages": len(gen.deleted), "dtype": gen.dtype,
                     "index_type": index.kind if index else None,
                     "tombstoned_pages": len(index.dead) if index else 0})

    def optimize(self: FaissIndexer, keep: timedelta) -> OptimizeReport:
        """One segment, a fresh index, no files of old generations (``keep`` unused: see
        the module docstring). Already one clean segment: only the garbage is collected."""
        started = time.monotonic()
        before = self.storage_stats()
        old = _generation_files(self.path)
        try:
            if (before.fragments > 1 or before.details["deleted_pages"]
                    or before.details["tombstoned_pages"]):
                self.compact()  # a commit: collects the old generation's files itself
            else:
                with self._lock, self._writer:
                    store.collect_garbage(self.path, self._fresh().generation)
            if self.quantization != "none":  # segments of older versions get their codes
                with self._lock, self._writer:
                    segment_codes.write_missing(self.path, self._fresh().segments,
                                                self.quantization)
        except (OSError, RetrieverError) as exc:
            raise RetrieverError(f"optimizing collection {self.name!r} failed: {short(exc)}",
                                 hint="the committed generation is untouched; retry later"
                                 ) from exc
        after = self.storage_stats()
        return OptimizeReport("faiss", before, after, len(old - _generation_files(self.path)),
                              keep.total_seconds(), time.monotonic() - started)

    def check_readable(self: FaissIndexer) -> None:
        """Metadata only: ``CURRENT``, its generation (format) and that every segment
        file it names exists. A saved FAISS index that is gone is no damage: it is
        rebuilt from the vectors."""
        for _ in range(_RETRIES):
            name = store.read_current(self.path)
            if name is None:
                return  # being created, or empty
            try:
                gen = store.read_generation(self.path, name)
            except FileNotFoundError:
                if store.read_current(self.path) != name:
                    continue  # a writer moved on and collected it
                raise RetrieverError(f"{name} (named by CURRENT) is missing") from None
            missing = [f for s in gen.segments for f in store.segment_files(s)
                       if not (self.path / f).is_file()]
            if not missing:
                return
            if store.read_current(self.path) == name:
                more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
                raise RetrieverError(f"segment file {missing[0]}{more} of generation "
                                     f"{gen.number} is missing")
        raise RetrieverError("its generations kept changing while it was opened")

    def verify(self: FaissIndexer) -> VerifyReport:
        dim, kind = self.manifest.encoder.dim, self.manifest.encoder.kind
        for _ in range(_RETRIES):
            checker = PageChecker("faiss", dim, kind)
            name = None
            try:
                if store.read_manifest(self.path) is None:
                    checker.problem(f"{store.MANIFEST} is missing")
            except RetrieverError as exc:  # the pages are still worth reading
                checker.problem(exc.message)
            try:
                name = store.read_current(self.path)
                gen = (store.read_generation(self.path, name) if name
                       else Generation(number=0, dtype="float16"))
                _check_generation(self.path, gen, checker)
            except FileNotFoundError as exc:
                if name is not None and store.read_current(self.path) != name:
                    continue  # a commit collected what we were reading: start again
                checker.problem(f"missing file: {Path(exc.filename or '?').name}")
            except (RetrieverError, OSError, ValueError) as exc:
                checker.problem(exc.message if isinstance(exc, RetrieverError) else short(exc))
            return checker.finish()
        raise RetrieverError(f"collection {self.name!r} kept changing while it was verified",
                             hint="retry when no index run is writing it")


def _check_generation(path: Path, gen: Generation, checker: PageChecker) -> None:
    seen: set[int] = set()
    for seg_name in gen.segments:
        try:
            segment = store.load_segment(path, seg_name)
        except FileNotFoundError:
            raise
        except (RetrieverError, OSError, ValueError, KeyError) as exc:
            checker.problem(f"segment {seg_name} is unreadable: "
                            f"{exc.message if isinstance(exc, RetrieverError) else short(exc)}")
            continue
        _check_segment(segment, gen, checker, seen)
    if gen.index:
        try:
            TokenIndex.load(path, gen.index)
        except FileNotFoundError:
            raise
        except (RetrieverError, OSError, ValueError) as exc:
            checker.problem(f"the saved FAISS index {gen.index['file']} is unreadable "
                            f"({short(exc)}); it is rebuilt from the vectors on open")


def _check_segment(segment: Segment, gen: Generation, checker: PageChecker,
                   seen: set[int]) -> None:
    for row, page_id in enumerate(segment.page_ids.tolist()):
        if page_id in gen.deleted:
            continue
        if page_id in seen:
            checker.problem(f"page id {page_id} is stored in more than one segment")
        seen.add(page_id)
        meta = segment.metas[row]
        a, b = int(segment.offsets[row]), int(segment.offsets[row + 1])
        doc_id, number = str(meta.get("doc_id")), int(meta.get("page_number", 0))
        checker.page(f"{doc_id}:{number}", doc_id, number, np.asarray(segment.vectors[a:b]),
                     np.asarray(segment.boxes[a:b]), segment.regions[row])

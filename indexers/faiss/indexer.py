"""``FaissIndexer``: a collection directory of immutable segments searched through FAISS.

Layout and commit protocol are in ``store.py``; index types in ``ann.py``; the two-stage
search in ``search.py``. Every ``add`` or ``delete`` is one commit (one new generation);
readers check ``CURRENT`` on each call, so commits of other processes are seen by the next
call, and writers of several processes take turns through a file lock.

The in-memory FAISS index always matches the live pages: when it is loaded from a file
saved a few commits ago, the pages added since are added to it and the pages deleted since
removed (or tombstoned). A commit therefore saves the index only when it was rebuilt or
more than a tenth of its pages changed since the saved file, so indexing a document at a
time does not rewrite the whole index every time."""

from __future__ import annotations

__all__ = ["FaissIndexer", "STORAGE_DTYPES"]

import threading
from itertools import chain
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from retriever.errors import CollectionNotFoundError, RetrieverError, UsageError
from retriever.manifest import Manifest
from retriever.records import (
    check_queries,
    check_replace,
    missing_documents_error,
    missing_pages_error,
    with_paths,
)
from retriever.protocols import ScoredPage
from retriever.search.device_pages import resolve_device
from retriever.staging import StagedDocument
from retriever.types import MultiVector, PageRecord

from . import STORAGE_DTYPES, codes, device as on_device, files, search, store
from .ann import MULTI_NPROBE, TokenIndex, auto_type
from .lexical import SegmentTerms
from .maintenance import FaissMaintenance
from .records import merge_segments, staged_chunks, validate_records, write_records
from .state import LiveView
from .store import Generation, Segment

_SAVE_FRACTION = 0.1  # save the index once this share of its pages changed since the file
_READ_RETRIES = 5


class FaissIndexer(FaissMaintenance):  # + storage upkeep (maintenance.py)
    """Pages of one collection on disk; search through a FAISS index and exact MaxSim.

    ``index_type``: None keeps the collection's own choice ("auto" for a new one), else
    "auto" | "flat" | "hnsw" | "ivf" | "ivfpq" (``ann.py``). For multi-vector collections
    "flat" means exact MaxSim over every page with no FAISS index (a flat token index reads
    every vector too, and only approximates). ``candidates``: pages scored exactly after
    stage 1 (at least ``k``; a collection no larger is scored exactly whole). ``token_k``:
    vectors fetched per query vector in stage 1 (default 128; single-vector collections
    fetch ``candidates``). ``nprobe``, ``ef_search``: IVF and HNSW search effort (IVF
    default: ``ann.MULTI_NPROBE`` per query vector for multi-vector collections).
    ``dtype``: vector storage of a new collection. ``quantization``: "int8" or "binary"
    makes stage 1 code MaxSim (``codes.py``) instead of FAISS; fixed by the manifest, this
    option may only name it (or set it for a new collection). ``rerank``: pages scored
    exactly in stage 2, overriding ``candidates`` (default for codes: per format).
    ``device`` (a torch device such as "cuda"): exact MaxSim over every page with the pages
    held there in half precision (``device.py``), instead of any of the above.
    """

    def __init__(self, path: Path | str, manifest: Manifest | None = None, *,
                 index_type: str | None = None, candidates: int = 256,
                 token_k: int | None = None, nprobe: int | None = None,
                 ef_search: int | None = None, dtype: str = "float16",
                 threads: int | None = None, quantization: str | None = None,
                 rerank: int | None = None, device: str | None = None) -> None:
        if dtype not in STORAGE_DTYPES:
            raise UsageError(f"unknown vector storage dtype {dtype!r}",
                             hint=f"use one of {list(STORAGE_DTYPES)}")
        self.path = Path(path)
        self.name = self.path.name or str(self.path)
        self.index_type, self.candidates, self.token_k = index_type, candidates, token_k
        self.nprobe, self.ef_search, self.threads = nprobe, ef_search, threads
        self.rerank, self.device = rerank, device
        if device:
            resolve_device(device)  # an unknown or absent device is said at open
        if quantization is not None:
            codes.check_quantization(quantization)
        if self.path.exists() and not self.path.is_dir():
            raise UsageError(f"collection path {self.path} is a file, not a directory")
        stored = store.read_manifest(self.path) if self.path.is_dir() else None
        if stored is None:
            if manifest is None:
                raise CollectionNotFoundError(
                    f"collection {self.name!r} not found at {self.path}",
                    hint="index documents into it first, or check the collection name")
            if quantization is not None:  # the option names the format of a new collection
                manifest = replace(manifest, quantization=quantization)
            codes.check_quantization(manifest.quantization)
            self.path.mkdir(parents=True, exist_ok=True)
            with files.WriteLock(self.path):  # another process may be creating it too
                if store.read_manifest(self.path) is None:
                    store.create_collection(self.path, manifest, dtype)
            stored = store.read_manifest(self.path)
        elif manifest is not None:
            stored.check_compatible(manifest.encoder, self.name)
        stored.check_quantization(quantization, self.name)
        self.manifest: Manifest = stored
        self.quantization = stored.quantization
        self._lock = threading.RLock()
        self._writer = files.WriteLock(self.path)
        self._segments: dict[str, Segment] = {}
        self._view: LiveView | None = None
        self._index: TokenIndex | None = None
        self._unsaved = 0  # pages changed in the in-memory index since its file
        self._rebuilt = False
        self._closed = False
        self._lexical = SegmentTerms()  # BM25 from the stored region text (lexical.py)

    # -- state --------------------------------------------------------------------------

    def _fresh(self) -> LiveView:
        """The view of the current generation, loading what changed since the last call."""
        if self._closed:
            raise UsageError(f"collection {self.name!r} is closed")
        for attempt in range(_READ_RETRIES):
            try:
                name = store.read_current(self.path)
                if self._view is not None and name == self._view.generation.file_name:
                    return self._view
                gen = (store.read_generation(self.path, name) if name
                       else Generation(number=0, dtype="float16"))
                segs = [self._segments.get(n) or store.load_segment(self.path, n)
                        for n in gen.segments]
                view = LiveView.build(gen, self.manifest.encoder.dim, segs)
                self._carry_over(self._view, view)
                self._sync_index(view)
            except FileNotFoundError:  # a writer collected that generation: read again
                if attempt == _READ_RETRIES - 1:
                    raise
                continue
            self._segments = {s.name: s for s in segs}
            self._view = view
            return view
        raise RetrieverError(f"collection {self.name!r} could not be read")  # not reached

    def _carry_over(self, old: LiveView | None, new: LiveView) -> None:
        """The next view starts from what the last one built for search (a quantized
        collection's codes, the float32 matrix of exact search), moved by what changed,
        instead of converting every stored page again on its first search."""
        if old is None:
            return
        if self.quantization != "none":
            codes.carry_codes(old, new, self.quantization)
        new.carry_exact(old)
        on_device.carry_device(old, new)

    def _wanted_type(self, gen: Generation, view: LiveView) -> str | None:
        request = self.index_type or gen.index_request
        kind = self.manifest.encoder.kind
        if self.quantization != "none":
            return None  # stage 1 runs on codes, not on a FAISS index
        if request == "auto":
            return auto_type(kind, view.n_vectors)
        return None if kind == "multi" and request == "flat" else request

    def _sync_index(self, view: LiveView) -> None:
        """Bring the in-memory index to exactly the live pages of ``view``."""
        wanted = self._wanted_type(view.generation, view)
        entry = view.generation.index
        if wanted is None or view.n_vectors == 0:
            self._index, self._unsaved, self._rebuilt = None, 0, False
            return
        if self._index is None and entry and entry["type"] == wanted:
            try:
                self._index, self._unsaved = TokenIndex.load(self.path, entry), 0
            except RetrieverError:
                self._index = None  # unreadable: rebuilt from the stored vectors below
        index = self._index
        if index is not None:
            held = np.fromiter(index.pages, np.int64, len(index.pages))
            stale = held[~np.isin(held, view.page_ids)]
            new = np.flatnonzero(~np.isin(view.page_ids, held))  # live positions
            index.drop(stale.tolist())
            if new.size:
                vectors, _ = view.gather(new)  # (N_new, d)
                index.add(view.page_ids[new], view.counts[new], vectors)
            self._unsaved += int(stale.size + new.size)
        if index is None or index.needs_rebuild(wanted):
            vectors, _ = view.gather(np.arange(len(view)))  # (N, d)
            self._index = TokenIndex.build(wanted, view.dim, view.page_ids, view.counts,
                                           vectors)
            self._rebuilt = True

    # -- writes -------------------------------------------------------------------------

    def add(self, records: Sequence[PageRecord]) -> None:
        """Add pages, replacing stored pages with the same ``doc_id:page``: one commit."""
        self.replace(records)

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Delete every page of these documents in one commit; return how many went."""
        return self.replace([], delete=doc_ids)

    def replace(self, records: Sequence[PageRecord], *, delete: Sequence[str] = (),
                paths: Mapping[str, Sequence[str]] | None = None,
                staged: Sequence[StagedDocument] = ()) -> int:
        """Delete documents, add pages and relink documents in one generation (``Indexer``).

        Segments never change, so a relinked document's pages are written again (same
        vectors, new page ids); ``staged`` documents are read back batch by batch into
        segments of at most ``records.STAGED_SEGMENT_PAGES`` pages."""
        records, staged = list(records), list(staged)
        validate_records(records, self.manifest, self.name)
        doc_ids, new_paths = check_replace(records, delete, paths, [s.doc_id for s in staged])
        records = with_paths(records, new_paths)
        if not (records or staged or doc_ids or new_paths):
            return 0
        chunks = staged_chunks(staged, new_paths, self.manifest, self.name)
        relink = {d: p for d, p in new_paths.items() if d not in {s.doc_id for s in staged}}
        return self._commit(records, doc_ids, relink=relink, staged=chunks)

    def compact(self) -> None:
        """Rewrite all pages into one segment without deleted ones and rebuild the index
        (drops HNSW tombstones); searches are unchanged."""
        self._commit([], (), compact=True)

    def _commit(self, records: list[PageRecord], doc_ids: Sequence[str], *,
                relink: Mapping[str, Sequence[str]] | None = None,
                compact: bool = False, staged: Iterable[list[PageRecord]] = ()) -> int:
        with self._lock, self._writer:
            view = self._fresh()  # the latest generation, whoever wrote it
            records = records + self._relinked(view, records, relink or {})
            gen = view.generation
            number, dtype = gen.number + 1, gen.dtype
            deleted, segments, next_id = set(gen.deleted), list(view.segments), gen.next_page_id
            wanted = set(doc_ids)
            gone = [i for i, d in enumerate(view.doc_ids()) if d in wanted]
            rewritten: set[str] = set()
            try:
                # staged chunks are read lazily, one segment's worth in memory at a time
                for part, chunk in enumerate(c for c in chain([records], staged) if c):
                    rewritten.update(r.key for r in chunk)
                    ids = np.arange(next_id, next_id + len(chunk), dtype=np.int64)
                    next_id += len(chunk)
                    segments.append(write_records(self.path, f"seg-{number:08d}-{part}s",
                                                  chunk, ids, dtype, view.dim,
                                                  self.quantization))
                replaced = [view.by_key[k] for k in rewritten if k in view.by_key]
                if not (rewritten or gone or compact):
                    return 0
                deleted.update(view.page_ids[gone + replaced].tolist())
                kept = sum(view.keys[i] in rewritten for i in gone)  # deleted, added again
                plan = ([s.name for s in segments] if compact
                        else store.merge_plan(segments, frozenset(deleted)))
                if plan:
                    merged, dropped = merge_segments(self.path, f"seg-{number:08d}-1",
                                                     segments, plan, deleted,
                                                     self.quantization)
                    segments = [s for s in segments if s.name not in plan] + merged
                    deleted -= dropped
                new_gen = Generation(number, dtype, next_id, tuple(s.name for s in segments),
                                     frozenset(deleted), None,
                                     self.index_type or gen.index_request)
                new_view = LiveView.build(new_gen, view.dim, segments)
                self._carry_over(view, new_view)
                if compact:
                    self._index = None  # rebuilt from scratch: no tombstones, fresh training
                self._sync_index(new_view)
                entry = self._index_entry(gen.index, number)
                new_view.generation = new_gen = replace(new_gen, index=entry)
                store.write_generation(self.path, new_gen)  # the commit point
            except BaseException:
                # the in-memory index may hold half of this commit: reload from disk
                self._view, self._index, self._segments = None, None, {}
                store.collect_after_failure(self.path)
                raise
            self._view, self._segments = new_view, {s.name: s for s in segments}
            try:
                store.collect_garbage(self.path, new_gen)
            except OSError:
                pass  # debris only costs disk; the next commit tries again
            return len(gone) - kept

    def _relinked(self, view: LiveView, records: list[PageRecord],
                  relink: Mapping[str, Sequence[str]]) -> list[PageRecord]:
        """The stored pages of the documents in ``relink`` that ``records`` does not hold,
        with their new paths."""
        added = {r.doc_id for r in records}
        wanted = {d: p for d, p in relink.items() if d not in added}
        if not wanted:
            return []
        doc_ids = view.doc_ids()
        positions = [i for i, d in enumerate(doc_ids) if d in wanted]
        missing = sorted(set(wanted) - {doc_ids[i] for i in positions})
        if missing:
            raise missing_documents_error(self.name, missing)
        return with_paths([view.record(i) for i in positions], wanted)

    def _index_entry(self, previous: dict | None, number: int) -> dict | None:
        index = self._index
        if index is None:
            return None
        due = self._unsaved > _SAVE_FRACTION * max(len(index.pages), 1)
        if self._rebuilt or previous is None or previous["type"] != index.kind or due:
            entry = index.save(self.path, number)
            self._unsaved, self._rebuilt = 0, False
            return entry
        return previous

    # -- reads --------------------------------------------------------------------------

    def search(self, queries: Sequence[MultiVector], k: int, *, rerank: int | None = None,
               candidates: int | None = None, token_k: int | None = None,
               nprobe: int | None = None, ef_search: int | None = None,
               threads: int | None = None,
               device: str | None = None) -> list[list[ScoredPage]]:
        """Top ``k`` pages per query by exact MaxSim over the stage-1 candidates.

        The keywords override, for this search only, the options the indexer was opened
        with (same meaning; ``rerank``: pages scored exactly in stage 2, on codes for a
        quantized collection, after the FAISS shortlist otherwise).
        """
        search.check_options(rerank=rerank, candidates=candidates, token_k=token_k,
                             nprobe=nprobe, ef_search=ef_search, threads=threads)
        rerank = rerank or self.rerank
        candidates = candidates or self.candidates
        token_k, nprobe = token_k or self.token_k, nprobe or self.nprobe
        ef_search, threads = ef_search or self.ef_search, threads or self.threads
        device = device or self.device
        queries = list(queries)
        check_queries(queries, self.manifest, self.name)
        if not queries:
            return []
        with self._lock:  # a snapshot: a view never changes once built
            view, index = self._fresh(), self._index
        if k <= 0 or len(view) == 0:
            return [[] for _ in queries]
        if device:  # every page, exactly, on the accelerator
            return on_device.device_search(view, queries, k, device)
        coded = self.quantization != "none"
        budget = max(rerank or (codes.default_rerank(self.quantization) if coded
                                else candidates), k)
        # exact and code searches read the immutable view alone: they hold no lock
        if len(view) <= budget or (index is None and not coded):
            return search.exact_search(view, queries, k, threads)
        if coded:
            return codes.code_search(view, queries, k, quantization=self.quantization,
                                     rerank=budget, threads=threads, directory=self.path)
        with self._lock:  # the FAISS token index is updated in place by commits
            view, index = self._fresh(), self._index
            if index is None:  # dropped by a commit in between
                return search.exact_search(view, queries, k, threads)
            single = self.manifest.encoder.kind == "single"
            token_k = budget if single else token_k or 128
            nprobe = nprobe or (None if single else MULTI_NPROBE)
            return [search.two_stage(index, view, q, k, budget=budget, token_k=token_k,
                                     nprobe=nprobe, ef_search=ef_search,
                                     threads=threads) for q in queries]

    def get(self, keys: Sequence[str]) -> list[PageRecord]:
        """Full records in the order of ``keys``; an unknown key is an error."""
        keys, view = list(keys), self._live()
        missing = [k for k in keys if k not in view.by_key]
        if missing:
            raise missing_pages_error(self.name, missing)
        return [view.record(view.by_key[k]) for k in keys]

    def lexical_search(self, queries: Sequence[Any], k: int) -> list[list[Any]]:
        """The top ``k`` regions by BM25 per analyzed query (``LexicalIndexer``; lexical.py)."""
        return self._lexical.search(self._live(), list(queries), k)

    def page_terms(self, keys: Sequence[str]) -> dict[str, list[str]]:
        return self._lexical.page_terms(self._live(), list(keys))

    def _live(self) -> LiveView:
        """The current view (immutable once built: read it without the lock)."""
        with self._lock:
            return self._fresh()

    def documents(self) -> dict[str, str]:
        return self._live().documents()

    def paths(self) -> dict[str, list[str]]:
        return self._live().paths()

    def count(self) -> int:
        return len(self._live())

    def vector_count(self) -> int:
        """Vectors stored over all live pages."""
        return int(self._live().n_vectors)

    def close(self) -> None:
        with self._lock:
            self._view, self._index, self._segments, self._closed = None, None, {}, True

    def __repr__(self) -> str:
        return f"FaissIndexer({str(self.path)!r})"

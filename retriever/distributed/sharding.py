"""Splitting a collection into shard collections, and indexing straight into them.

A sharded collection ``NAME`` is ``S`` ordinary collections named ``NAME.shard-I-of-S``
(``shard_name``; ``@`` is not allowed in collection names, ``.`` and ``-`` are). Each one
is a complete collection with the same manifest (encoder, quantization, compressor,
build options), so every command that takes a collection works on a shard too.

A document lives in shard ``shard_of(doc_id, S)``: a stable hash of its ``doc_id`` (the
content hash of its file), never Python's ``hash`` (salted per process). So the split is
the same on every run and machine, and a file indexed later through
``ShardedCollection.index`` lands where ``shard_collection`` would have put it.

Nothing here imports Ray: splitting and routed indexing run anywhere.
"""

from __future__ import annotations

__all__ = ["ShardReport", "ShardedCollection", "find_shards", "shard_collection",
           "shard_name", "shard_of", "sharded_collections"]

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config
from ..errors import (
    BadInputError,
    CollectionNotFoundError,
    IndexInterrupted,
    RetrieverError,
    UsageError,
)
from ..indexing import DeleteReport, IndexReport, ProgressCallback
from ..ingest import content_hash, discover
from ..integrity import create_atomically, open_checked
from ..locking import writer_lock
from ..manifest import Manifest
from ..plugin_host import get_registry
from ..protocols import Indexer
from ..sdk import Retriever
from ..types import FileFailure, PageRecord

#: pages copied per commit while splitting: few commits (few Lance fragments), bounded memory
COPY_BATCH_PAGES = 256
_PROBE = 32  # page keys asked for at once while finding a document's pages


def shard_name(collection: str, index: int, shards: int) -> str:
    """The collection name of shard ``index`` of ``shards`` (checked like any name)."""
    if shards < 1 or not 0 <= index < shards:
        raise UsageError(f"shard {index} of {shards} does not exist")
    return config.validate_collection_name(f"{collection}.shard-{index}-of-{shards}")


def shard_of(doc_id: str, shards: int) -> int:
    """The shard holding ``doc_id``: sha256 of the id, first 8 bytes, modulo ``shards``."""
    if shards < 1:
        raise UsageError(f"shards must be at least 1, got {shards}")
    digest = hashlib.sha256(doc_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


_SHARD = re.compile(r"^(?P<collection>.+)\.shard-(?P<index>\d+)-of-(?P<shards>\d+)$")


def sharded_collections(data_dir: str | Path | None = None) -> dict[str, list[int]]:
    """``collection -> the shard counts it has a complete set of`` (usually one), for
    every collection split into shards in ``data_dir``."""
    found: dict[tuple[str, int], set[int]] = {}
    for name in Retriever.list_collections(data_dir):
        match = _SHARD.match(name)
        if match:
            key = (match.group("collection"), int(match.group("shards")))
            found.setdefault(key, set()).add(int(match.group("index")))
    out: dict[str, list[int]] = {}
    for (collection, shards), present in sorted(found.items()):
        if present == set(range(shards)):
            out.setdefault(collection, []).append(shards)
    return out


def find_shards(collection: str, data_dir: str | Path | None = None) -> int:
    """How many shards ``collection`` was split into, from the shard collections present.

    An error when there are none, or when shards of two different counts are there (a
    re-split into another count that was not cleaned up): then ``shards=`` must say."""
    complete = sharded_collections(data_dir).get(collection, [])
    if len(complete) == 1:
        return complete[0]
    if not complete:
        raise CollectionNotFoundError(
            f"collection {collection!r} has no complete set of shards",
            hint=f"split it first: retriever collections shard {collection} --shards S")
    raise UsageError(f"collection {collection!r} has shards of several counts "
                     f"({', '.join(map(str, sorted(complete)))})", hint="say which: shards=S")


@dataclass
class ShardReport:
    """What ``shard_collection`` did: per shard its name, documents and pages copied."""

    collection: str
    shards: list[str]
    documents: list[int]  # documents copied into each shard by this run
    pages: list[int]
    skipped: int = 0  # documents already in their shard (a re-run)

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "skipped": self.skipped,
                "shards": [{"name": n, "documents": d, "pages": p}
                           for n, d, p in zip(self.shards, self.documents, self.pages)]}


def _document_pages(indexer: Indexer, doc_id: str) -> list[PageRecord]:
    """Every stored page of ``doc_id``. The Indexer API reads pages by key only, and a
    document's pages are numbered 1..n without gaps (``integrity``), so ask for keys in
    runs of ``_PROBE`` and one at a time once a run reaches past the last page."""
    pages: list[PageRecord] = []
    start = 1
    while True:
        keys = [f"{doc_id}:{p}" for p in range(start, start + _PROBE)]
        try:
            pages.extend(indexer.get(keys))
        except RetrieverError:  # some key past the end: the rest one by one
            for key in keys:
                try:
                    pages.extend(indexer.get([key]))
                except RetrieverError:
                    return pages
            return pages  # pragma: no cover - a run fails only when one of its keys does
        start += _PROBE


def _open_shard(name: str, root: Path, manifest: Manifest) -> Indexer:
    """Shard collection ``name`` with ``manifest``: created when missing, else opened and
    checked to have been built the same way (so scores are comparable across shards)."""
    spec = get_registry().get("indexer", manifest.indexer)
    path = config.collection_path(name, root) / manifest.indexer
    # the build options the source was made with, or the legacy value of those it
    # predates: what reopening the source assumes, so the shard stores vectors alike
    build = spec.reopen_options(manifest.indexer_options)
    if not path.exists():
        create_atomically(spec, path, manifest, build)
    indexer = open_checked(spec, name, path=path)
    stored = indexer.manifest
    if (stored.encoder != manifest.encoder or stored.quantization != manifest.quantization
            or stored.compressor != manifest.compressor
            or stored.indexer_options != manifest.indexer_options):
        indexer.close()
        raise UsageError(f"collection {name!r} exists and was not built like the "
                         "collection being split", hint=f"delete it: retriever collections "
                                                        f"delete {name}")
    return indexer


def shard_collection(collection: str, shards: int, *,
                     data_dir: str | Path | None = None) -> ShardReport:
    """Split ``collection`` into ``shards`` shard collections by ``shard_of(doc_id)``.

    Stored pages (vectors, boxes, counts, regions, paths) are copied through the indexer
    API: nothing is encoded again, and the source collection is left as it is. Each
    shard's writer lock is held while it is written. A re-run copies only the documents
    missing from their shard and deletes nothing (documents indexed into a shard since
    the split stay). A shard that was not built like the source is an error.
    """
    names = [shard_name(collection, i, shards) for i in range(shards)]
    root = config.data_dir(data_dir)
    with Retriever(collection, data_dir=root) as source:
        manifest = source.indexer.manifest
        documents = source.indexer.paths()  # doc_id -> every path it is recorded at
        report = ShardReport(collection, names, [0] * shards, [0] * shards)
        targets: dict[int, list[str]] = {}
        for doc_id in sorted(documents):  # sorted: the same commits on every run
            targets.setdefault(shard_of(doc_id, shards), []).append(doc_id)
        for index, name in enumerate(names):
            with writer_lock(root, name, "shard"):
                shard = _open_shard(name, root, manifest)
                try:
                    present = set(shard.paths())
                    batch: list[PageRecord] = []
                    links: dict[str, list[str]] = {}
                    for doc_id in targets.get(index, []):
                        if doc_id in present:
                            report.skipped += 1
                            continue
                        pages = _document_pages(source.indexer, doc_id)
                        batch.extend(pages)
                        links[doc_id] = documents[doc_id]
                        report.documents[index] += 1
                        report.pages[index] += len(pages)
                        if len(batch) >= COPY_BATCH_PAGES:  # whole documents per commit
                            shard.replace(batch, paths=links)
                            batch, links = [], {}
                    if batch:
                        shard.replace(batch, paths=links)
                finally:
                    shard.close()
    return report


class ShardedCollection:
    """The shards of a split collection, for writing: routed indexing, documents, info.

    ``shards``: how many (default: found from the shard collections present,
    ``find_shards``). ``retriever_options`` go to each shard's ``Retriever`` (encoder
    options such as device, ocr, max_pixels).
    """

    def __init__(self, collection: str, shards: int | None = None, *,
                 data_dir: str | Path | None = None, **retriever_options: Any) -> None:
        self.collection = config.validate_collection_name(collection)
        self.root = config.data_dir(data_dir)
        self.shards = shards if shards is not None else find_shards(collection, self.root)
        self.names = [shard_name(collection, i, self.shards) for i in range(self.shards)]
        self._options = retriever_options

    def shard_for(self, doc_id: str) -> str:
        """The shard collection that holds (or will hold) ``doc_id``."""
        return self.names[shard_of(doc_id, self.shards)]

    def retriever(self, index: int) -> Retriever:
        """An SDK ``Retriever`` over shard ``index`` (close it when done)."""
        return Retriever(self.names[index], data_dir=self.root, **self._options)

    def index(self, paths: Sequence[str | Path], *, include: Sequence[str] = (),
              exclude: Sequence[str] = (), force: bool = False,
              progress: ProgressCallback | None = None,
              workers: int | None = None) -> IndexReport:
        """Index files into the shard their content hash (= ``doc_id``) belongs to.

        Directories are expanded here (``include``/``exclude`` as for ``index``), each file
        hashed once, then each shard indexes its own files with ``Retriever.index`` (its
        own encoder from its manifest, its own writer lock; unchanged files skipped, a
        moved file relinked without encoding). One report for all shards. A changed file
        (same path, new content) may move to another shard: its old version is deleted
        from whichever shard recorded that path, so no shard keeps a stale copy.
        """
        report = IndexReport()
        files, failures = discover(paths, include=include, exclude=exclude)
        report.failed.extend(failures)
        routed: dict[int, list[Path]] = {}
        for file in files:
            try:
                routed.setdefault(shard_of(content_hash(file), self.shards), []).append(file)
            except BadInputError as exc:  # unreadable: reported, the batch goes on
                report.failed.append(FileFailure(str(file), exc.reason, exc.detail))
        resolved = {str(Path(f).resolve()) for f in files}
        for index in range(self.shards):
            with self.retriever(index) as shard:
                mine = routed.get(index, [])
                self._drop_moved(shard, resolved - {str(Path(f).resolve()) for f in mine})
                if not mine:
                    continue
                try:
                    part = shard.index(mine, force=force, progress=progress, workers=workers)
                except IndexInterrupted as stop:  # what every shard committed, not one
                    _merge_reports(report, stop.report)
                    raise IndexInterrupted(report) from stop
                _merge_reports(report, part)
        return report

    @staticmethod
    def _drop_moved(shard: Retriever, paths: set[str]) -> None:
        """Forget, in ``shard``, the given paths of files now routed to another shard
        (their content changed): a document left without a path is deleted."""
        stale = [p for doc_paths in shard.documents().values() for p in doc_paths
                 if p in paths]
        if stale:
            shard.delete(stale)

    def delete(self, targets: Sequence[str | Path]) -> DeleteReport:
        """``Retriever.delete`` on every shard (a path may be recorded in any of them: a
        copy of a file with other content lives elsewhere); one report. A target is
        unmatched when no shard matched it."""
        total = DeleteReport()
        unmatched: set[str] | None = None
        for index in range(self.shards):
            with self.retriever(index) as shard:
                part = shard.delete(targets)
            total.documents += part.documents
            total.paths += part.paths
            total.pages += part.pages
            unmatched = set(part.unmatched) if unmatched is None else unmatched & set(
                part.unmatched)
        total.paths.sort()
        total.unmatched = [str(t) for t in targets if str(t) in (unmatched or set())]
        return total

    def documents(self) -> dict[str, list[str]]:
        """``doc_id -> paths`` over every shard (each document is in exactly one)."""
        out: dict[str, list[str]] = {}
        for index in range(self.shards):
            with self.retriever(index) as shard:
                out.update(shard.documents())
        return out

    def info(self) -> dict[str, Any]:
        """Each shard's ``Retriever.info()``, and the totals."""
        parts = []
        for index in range(self.shards):
            with self.retriever(index) as shard:
                parts.append(shard.info())
        return {"collection": self.collection, "shards": parts,
                "documents": sum(p["documents"] for p in parts),
                "pages": sum(p["pages"] for p in parts)}


def _merge_reports(total: IndexReport, part: IndexReport) -> None:
    for name, value in vars(part).items():
        mine = getattr(total, name)
        if isinstance(value, list):
            mine.extend(value)
        elif isinstance(value, bool):
            setattr(total, name, mine or value)
        elif isinstance(value, (int, float)):
            setattr(total, name, mine + value)



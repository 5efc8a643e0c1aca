"""``LanceDBIndexer``: an embedded LanceDB collection with exact, cached MaxSim search.

A collection is a directory holding a LanceDB database with one table, ``pages`` (schema in
``arrow.py``). Writes are single LanceDB commits; reads check the table version, so pages
that another process added or deleted are seen by the next call."""

from __future__ import annotations

__all__ = ["LanceDBIndexer", "TABLE_NAME"]

import logging
from itertools import chain
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from retriever.errors import CollectionNotFoundError, RetrieverError, UsageError
from retriever.manifest import Manifest
from retriever.records import (
    check_queries,
    check_records,
    check_replace,
    missing_documents_error,
    missing_pages_error,
    with_paths,
)
from retriever.protocols import ScoredPage
from retriever.search.quantization import check_quantization
from retriever.search.scoring import rank_pages
from retriever.search.device_pages import resolve_device
from retriever.search.scoring_torch import exact_maxsim_many
from retriever.staging import STAGING_DIR, StagedDocument, staged_batches
from retriever.storage import ObjectStore
from retriever.search.twostage import default_rerank
from retriever.types import MultiVector, PageRecord

from . import arrow as arrow_io
from . import codes as code_io
from .fragments import TABLE_NAME, LanceFragmentCommits
from .device import DeviceCache
from .exact import CACHE_DTYPES, ExactCache
from .fulltext import FullText
from .maintenance import LanceMaintenance
from .native import native_maxsim_search

log = logging.getLogger(__name__)
_WRITE_BATCH_PAGES = 64  # pages converted to Arrow at a time while streaming one commit
_KEYS_PER_QUERY = 512  # keys per SQL IN-list in get()


class LanceDBIndexer(LanceMaintenance, LanceFragmentCommits):  # maintenance.py, fragments.py
    """Pages of one collection in LanceDB; search is exact MaxSim over a memory cache.

    Options: ``dtype`` the vector storage type for a new collection ("float16", half the
    disk of "float32"; an existing collection keeps its own), ``cache_dtype`` the dtype of
    the in-memory search cache ("float32" is fastest: numpy's float16 cast costs more than
    the matmul; "float16" halves its memory), ``threads`` for the MaxSim kernel.
    ``quantization`` ("none", "int8", "binary") the codes a new collection keeps for
    two-stage search (an existing collection keeps its own; naming another is an error);
    ``rerank`` the pages a quantized search scores exactly (default: per format).
    """

    def __init__(
        self,
        path: Path | str,
        manifest: Manifest | None = None,
        *,
        dtype: str = "float16",
        cache_dtype: str = "float32",
        threads: int | None = None,
        quantization: str | None = None,
        rerank: int | None = None,
        storage: ObjectStore | None = None,
        device: str | None = None,
    ) -> None:
        import lancedb  # lazy: importing the plugin must stay cheap

        if quantization is not None:
            check_quantization(quantization)
        if rerank is not None and rerank < 1:
            raise UsageError(f"rerank must be at least 1, got {rerank}")
        if cache_dtype not in CACHE_DTYPES:
            raise UsageError(f"cache_dtype must be one of {CACHE_DTYPES}, got {cache_dtype!r}")
        if device:
            resolve_device(device)  # an unknown or absent device is said at open
        self.device, self._device_cache = device, DeviceCache()
        #: on object storage: the table's URI, and ``path`` its local mirror (staging)
        self.storage = storage
        self.uri: str | None = str(path) if storage is not None else None
        self.path = storage.local_path(str(path)) if storage is not None else Path(path)
        where = self.uri or str(self.path)
        self.name = where.rstrip("/").rsplit("/", 1)[-1] or where
        self.threads = threads
        self._exact = ExactCache(cache_dtype)
        self._columns: list[str] | None = None
        self._codes: code_io.CodeSearcher | None = None
        self._fulltext = FullText(self.name)
        self.rerank = rerank

        table = None
        if storage is not None:
            # no directory to look at first: Lance says whether the table is there
            db = self._connect(lancedb)
            table = self._open_existing(db)
        else:
            if self.path.exists() and not self.path.is_dir():
                raise UsageError(f"collection path {self.path} is a file, not a directory")
            if self.path.is_dir():  # lancedb.connect would create a missing directory
                db = self._connect(lancedb)
                table = self._open_existing(db)
        if table is None:
            if manifest is None:
                raise CollectionNotFoundError(
                    f"collection {self.name!r} not found at {where}",
                    hint="index documents into it first, or check the collection name",
                )
            if quantization is not None:  # the option names the format of a new collection
                manifest = replace(manifest, quantization=quantization)
            check_quantization(manifest.quantization)
            schema = arrow_io.build_schema(manifest, dtype)  # validates dtype before mkdir
            if storage is None:
                self.path.mkdir(parents=True, exist_ok=True)
            db = self._connect(lancedb)
            # exist_ok: another process may have created it a moment ago. On object
            # storage this is one Lance commit (a conditional put of version 1).
            table = db.create_table(TABLE_NAME, schema=schema, exist_ok=True)
        stored = arrow_io.manifest_from_schema(table.schema, self.name)
        if manifest is not None:
            stored.check_compatible(manifest.encoder, self.name)
        stored.check_quantization(quantization, self.name)
        self.manifest: Manifest = stored
        self.quantization = stored.quantization
        self._db: Any = db
        self._handle: Any = table
        self.dtype = arrow_io.storage_dtype_of(table.schema)

    def _connect(self, lancedb: Any) -> Any:
        # read_consistency_interval 0: every read checks for a newer version (any process)
        if self.storage is not None:
            return lancedb.connect(self.uri, read_consistency_interval=timedelta(0),
                                   storage_options=dict(self.storage.options))
        return lancedb.connect(self.path, read_consistency_interval=timedelta(0))

    @staticmethod
    def _open_existing(db: Any) -> Any:
        try:
            return db.open_table(TABLE_NAME)
        except ValueError:  # "Table 'pages' was not found"
            return None

    @property
    def staging_dir(self) -> Path:
        """Where encoded pages wait for their commit: always local (``staging.py``)."""
        return self.path / STAGING_DIR

    @property
    def _table(self) -> Any:
        if self._handle is None:
            raise UsageError(f"collection {self.name!r} is closed")
        return self._handle

    # -- writes -------------------------------------------------------------------------

    def _validate(self, records: Sequence[PageRecord]) -> None:
        check_records(records, self.manifest, self.name)

    def add(self, records: Sequence[PageRecord]) -> None:
        """Add pages, replacing any stored page with the same ``doc_id:page`` (one commit)."""
        self.replace(records)

    def replace(self, records: Sequence[PageRecord], *, delete: Sequence[str] = (),
                paths: Mapping[str, Sequence[str]] | None = None,
                staged: Sequence[StagedDocument] = ()) -> int:
        """Delete documents, add pages and relink documents in one commit (``Indexer``).

        Everything goes to LanceDB as one stream and one merge-insert on ``key``: new pages
        (``records``, then the ``staged`` documents' batches, read one at a time) are
        inserted or update their key, the stored pages of relinked documents come back
        with their new paths, and pages of ``delete`` documents that the stream does not
        hold are deleted by the same commit (``when_not_matched_by_source_delete``). A
        failure anywhere, even halfway through converting the pages, leaves the table as it
        was. Batches are converted lazily, so memory stays about one batch.
        """
        import pyarrow as pa

        records, staged = list(records), list(staged)
        self._validate(records)
        delete, new_paths = check_replace(records, delete, paths, [s.doc_id for s in staged])
        records = with_paths(records, new_paths)
        added = {r.doc_id for r in records} | {s.doc_id for s in staged}
        relink = [d for d in new_paths if d not in added]
        schema = self._table.schema
        relinked = self._relinked_rows(relink, new_paths, schema) if relink else None
        if not records and not staged and relinked is None:
            return self._delete_now(delete)
        failure: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for chunk in chain([records], staged_batches(staged, new_paths,
                                                             self._validate)):
                    for start in range(0, len(chunk), _WRITE_BATCH_PAGES):
                        yield self._to_batch(chunk[start : start + _WRITE_BATCH_PAGES], schema)
                if relinked is not None:
                    yield from relinked.to_batches(max_chunksize=_WRITE_BATCH_PAGES)
            except BaseException as exc:  # LanceDB wraps it; keep ours to re-raise
                failure.append(exc)
                raise

        reader = pa.RecordBatchReader.from_batches(schema, batches())
        merge = (self._table.merge_insert("key").when_matched_update_all()
                 .when_not_matched_insert_all())
        if delete:
            merge = merge.when_not_matched_by_source_delete(
                f"doc_id IN {arrow_io.sql_string_list(delete)}")
        try:
            result = merge.execute(reader)
        except Exception as exc:
            if failure:
                raise failure[0] from None
            raise RetrieverError(
                f"writing {len(records)} pages to collection {self.name!r} failed: {exc}",
                hint="nothing was written; check disk space and permissions, then retry",
            ) from exc
        self._refresh_fulltext()
        return int(getattr(result, "num_deleted_rows", 0) or 0)

    def _refresh_fulltext(self) -> None:
        try:  # derived data, after the commit: its failure must not fail the commit
            self._fulltext.refresh(self._table)
        except Exception as exc:  # noqa: BLE001 - the next commit or search builds it again
            log.warning("collection %r: full-text index not refreshed: %s", self.name, exc)

    def _relinked_rows(self, doc_ids: list[str], paths: Mapping[str, Sequence[str]],
                       schema: Any) -> Any:
        """The stored rows of ``doc_ids`` (every column) with their new source and paths."""
        table = self._scan(schema.names, where=f"doc_id IN {arrow_io.sql_string_list(doc_ids)}")
        missing = sorted(set(doc_ids) - set(table.column("doc_id").to_pylist()))
        if missing:
            raise missing_documents_error(self.name, missing)
        return arrow_io.with_new_paths(table, paths, schema)

    def _to_batch(self, records: Sequence[PageRecord], schema: Any) -> Any:
        """One Arrow batch (a seam that tests use to fail a write halfway)."""
        return arrow_io.records_to_batch(records, schema)

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Delete every page of these documents in one commit; return how many went."""
        return self._delete_now(list(dict.fromkeys(doc_ids)))

    def _delete_now(self, doc_ids: list[str]) -> int:
        if not doc_ids:
            return 0
        result = self._table.delete(f"doc_id IN {arrow_io.sql_string_list(doc_ids)}")
        return int(result.num_deleted_rows)

    # -- reads --------------------------------------------------------------------------

    def _scan(self, columns: list[str], where: str | None = None) -> Any:
        query = self._table.search()
        if where is not None:
            query = query.where(where)
        return query.select(columns).limit(None).to_arrow()

    def _code_searcher(self) -> code_io.CodeSearcher:
        if self._codes is None:
            self._codes = code_io.CodeSearcher(self.quantization, self.manifest.encoder.dim)
        return self._codes

    def search(
        self, queries: Sequence[MultiVector], k: int, *, rerank: int | None = None,
        threads: int | None = None, device: str | None = None,
    ) -> list[list[ScoredPage]]:
        """Top ``k`` per query by MaxSim; equal scores are ordered by page key.

        Exact over every page, or, for a quantized collection, exact over the ``rerank``
        pages (default: the indexer's option, else per format) that the codes shortlist.
        ``rerank`` on a collection without codes is an error: every page is scored exactly,
        so there is nothing to rerank. ``threads`` overrides the indexer's for this search.
        ``device`` (a torch device such as "cuda"; also an open option): a collection
        without codes is scored exactly with its pages held there (``device.py``).
        """
        queries = list(queries)
        check_queries(queries, self.manifest, self.name)
        if rerank is not None and rerank < 1:
            raise UsageError(f"rerank must be at least 1, got {rerank}")
        if threads is not None and threads < 1:
            raise UsageError(f"threads must be at least 1, got {threads}")
        threads = threads or self.threads
        if self.quantization == "none" and (rerank or self.rerank):
            raise UsageError(
                f"rerank has no meaning for collection {self.name!r}: it keeps no codes, so "
                "every page is scored exactly", hint="rerank applies to collections indexed "
                "with --quantization int8 or binary")
        if self.quantization != "none" and (device or self.device):
            raise UsageError(
                f"device has no meaning for collection {self.name!r}: it searches its codes "
                "on the host", hint="device applies to collections indexed without "
                "--quantization")
        if not queries:
            return []
        if self.quantization != "none":
            budget = rerank or self.rerank or default_rerank(self.quantization)
            return self._code_searcher().search(self._table, queries, k, budget, threads)
        if device or self.device:  # every page on the device; no host copy of them
            return self._device_cache.search(self._table, queries, k, device or self.device,
                                             self.manifest.encoder.dim)
        cache = self._exact.current(self._table)
        if k <= 0 or cache.keys.size == 0:
            return [[] for _ in queries]
        scores = exact_maxsim_many(  # (n_queries, P); torch when installed, else numpy
            [q.vectors for q in queries], cache.vectors, cache.offsets, threads=threads
        )
        return [rank_pages(row, cache.keys, k) for row in scores]

    def search_native(self, queries: Sequence[MultiVector], k: int) -> list[list[ScoredPage]]:
        """The same search through LanceDB's own flat multivector search (cross-check)."""
        queries = list(queries)
        check_queries(queries, self.manifest, self.name)
        return native_maxsim_search(self._table, queries, k)

    def _record_columns(self) -> list[str]:
        # every column but the codes, which records do not carry; the schema of an open
        # table does not change, and reading it is a round trip into LanceDB
        if self._columns is None:
            self._columns = [f.name for f in self._table.schema
                             if f.name not in code_io.CODE_COLUMNS]
        return self._columns

    def get(self, keys: Sequence[str]) -> list[PageRecord]:
        """Full records in the order of ``keys``; an unknown key is an error."""
        keys = list(keys)
        unique = list(dict.fromkeys(keys))
        found = self._exact.take(self._table, unique, self._record_columns())
        rest = [k for k in unique if k not in found]
        for start in range(0, len(rest), _KEYS_PER_QUERY):
            chunk = rest[start : start + _KEYS_PER_QUERY]
            table = self._scan(self._record_columns(),
                               where=f"key IN {arrow_io.sql_string_list(chunk)}")
            found.update((rec.key, rec) for rec in arrow_io.table_to_records(table))
        missing = [k for k in keys if k not in found]
        if missing:
            raise missing_pages_error(self.name, missing)
        return [found[k] for k in keys]

    def documents(self) -> dict[str, str]:
        return {doc_id: paths[0] for doc_id, paths in self.paths().items()}

    def paths(self) -> dict[str, list[str]]:
        columns = ["doc_id", "paths" if arrow_io.has_paths(self._table.schema) else "source"]
        table = self._scan(columns)
        return {d: list(p) for d, p in zip(table.column("doc_id").to_pylist(),
                                           arrow_io.paths_of_rows(table))}

    def count(self) -> int:
        return int(self._table.count_rows())

    def vector_count(self) -> int:
        """Vectors stored over all pages (one int column read)."""
        return int(self._scan(["n_vectors"]).column("n_vectors").to_numpy().sum())

    def lexical_search(self, queries: Sequence[Any], k: int) -> list[list[Any]]:
        """The top ``k`` regions by BM25 per analyzed query (``LexicalIndexer``; fulltext.py)."""
        return self._fulltext.search(self._table, list(queries), k)

    def page_terms(self, keys: Sequence[str]) -> dict[str, list[str]]:
        return self._fulltext.page_terms(self._table, list(keys))

    @property
    def version(self) -> int:
        """The LanceDB table version (one more per commit)."""
        return int(self._table.version)

    def close(self) -> None:
        """Drop the search cache and the table handle."""
        self._exact.clear()
        if self._codes is not None:
            self._codes.clear()
        self._handle = None
        self._db = None

    def __repr__(self) -> str:
        return f"LanceDBIndexer({self.uri or str(self.path)!r}, dtype={self.dtype})"


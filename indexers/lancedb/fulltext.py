"""Lexical search for LanceDB collections: region terms in the pages table, Lance's own FTS.

Each page row carries ``terms``, ``list<string>`` with one element per top-level region
(aligned with the record's regions), each element that region's terms as analyzed by
``retriever.search.lexical`` and joined by spaces. Two native inverted indexes cover the
column's list elements (``DocumentGranularity.LIST_ELEMENT``): every region is one BM25
document and a hit's ``_doc_index`` names its region. (Regions, not pages, because BM25
over regions ranks pages better: ``retriever.search.fusion``.) The terms ride in the same
row as the vectors, so a document's text and vectors land in one commit; the index is
derived data.

Why pre-analyzed terms and a whitespace tokenizer: the FAISS backend and the region
evidence of fusion and grounding analyze text in Python, and all three must agree on what
a term is (see ``retriever.search.lexical``).

Index upkeep: rows written after the index was built are still found (Lance scans them),
deleted rows disappear at once; scanning costs, so ``refresh`` rebuilds the index once the
rows it does not cover pass ``_STALE_ROWS`` or ``_STALE_FRACTION`` of the table (the
writer calls it after each commit: the rebuilds grow geometrically, so their total cost
stays proportional to the table). Collections made before the column existed get it on
first use (``ensure``): the column is added, filled from the stored region text and
indexed, in commits that each leave the table readable.
"""

from __future__ import annotations

__all__ = ["TERMS", "INDEX_NAME", "terms_field", "has_terms", "with_terms", "FullText"]

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from retriever.errors import RetrieverError
from retriever.protocols import RegionScore
from retriever.search.lexical import QueryTerms, region_terms

TERMS = "terms"
INDEX_NAME = "terms_fts"
_STALE_ROWS = 64  # unindexed rows a search may scan before the index is rebuilt...
_STALE_FRACTION = 0.05  # ...or this share of the table, whichever is larger
_MIGRATE_BATCH = 256  # rows per batch when an older table gets its terms


def terms_field(nullable: bool = False) -> pa.Field:
    return pa.field(TERMS, pa.list_(pa.string()), nullable=nullable)


def has_terms(schema: pa.Schema) -> bool:
    return TERMS in schema.names


def with_terms(schema: pa.Schema, columns: list[Any], records: Sequence[Any]) -> list[Any]:
    """``columns`` (every column of ``schema`` but the terms, in schema order) with the
    records' terms put in their place; unchanged for a table without the column."""
    if not has_terms(schema):
        return columns
    terms = pa.array([region_terms(r.regions) for r in records], pa.list_(pa.string()))
    at = schema.get_field_index(TERMS)
    return [*columns[:at], terms, *columns[at:]]


def _config() -> Any:
    from lancedb.index import FTS
    from lancedb.query import DocumentGranularity

    # the terms are analyzed already: split on spaces, nothing else; positions kept so a
    # PhraseQuery works on the column too
    return FTS(with_position=True, base_tokenizer="whitespace", lower_case=False, stem=False,
               remove_stop_words=False, ascii_folding=False, max_token_length=None,
               document_granularity=DocumentGranularity.LIST_ELEMENT)


class FullText:
    """The lexical side of one ``LanceDBIndexer``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._ready_version: int | None = None  # table version whose indexes were checked
        self._filled = False  # no row without terms (checked once per process)
        self._cache: _Texts | None = None
        self._lock = threading.Lock()

    # -- upkeep ---------------------------------------------------------------------

    def refresh(self, table: Any, *, rebuild: bool = True) -> None:
        """Build the index if missing, and (``rebuild``) rebuild it once too many rows are
        not covered by it."""
        if not has_terms(table.schema):
            return
        info = next((i for i in table.list_indices() if i.name == INDEX_NAME), None)
        rows = int(table.count_rows())
        if info is None:
            build = rows > 0
        else:
            build = rebuild and (info.num_unindexed_rows or 0) > max(
                _STALE_ROWS, _STALE_FRACTION * rows)
        if build:
            table.create_index(TERMS, config=_config(), name=INDEX_NAME, replace=True)

    def ensure(self, table: Any) -> None:
        """Make the table searchable: the terms column (older tables) and the index."""
        with self._lock:
            version = int(table.version)
            if self._ready_version == version:
                return
            try:
                if not has_terms(table.schema):
                    table.add_columns(terms_field(nullable=True))
                if not self._filled and table.schema.field(TERMS).nullable:
                    self._fill_missing(table)  # only a migrated column can hold nulls
                self._filled = True
                self.refresh(table, rebuild=False)  # stale ones are the writer's to rebuild
            except Exception as exc:  # noqa: BLE001 - Lance reports a read-only table variously
                raise RetrieverError(
                    f"collection {self.name!r} has no full-text index yet and it could not "
                    f"be built: {exc}", hint="open it once where it is writable") from exc
            self._ready_version = int(table.version)

    def _fill_missing(self, table: Any) -> None:
        """Terms for rows that have none (an older table, or one interrupted mid-way)."""
        from retriever.regions.columns import LazyRegions

        missing = (table.search().where(f"{TERMS} IS NULL").select(["key", "regions"])
                   .limit(None).to_arrow())
        if not missing.num_rows:
            return
        keys = missing.column("key").to_pylist()
        stored = missing.column("regions").to_pylist()
        schema = pa.schema([pa.field("key", pa.string(), nullable=False), terms_field(True)])
        for start in range(0, len(keys), _MIGRATE_BATCH):
            chunk = slice(start, start + _MIGRATE_BATCH)
            values = [region_terms(LazyRegions(s)) for s in stored[chunk]]
            batch = pa.table([pa.array(keys[chunk], pa.string()),
                              pa.array(values, pa.list_(pa.string()))], schema=schema)
            table.merge_insert("key").when_matched_update_all().execute(batch)

    # -- search ---------------------------------------------------------------------

    def _texts(self, table: Any) -> _Texts:
        """Every page's key and terms of this table version, read once per version.

        Why: a search hit names its row; reading the keys and terms of thirty candidate
        rows from the table costs more than the full-text search itself, while the whole
        column is small next to the vectors the search cache already holds."""
        version = int(table.version)
        with self._lock:
            cached = self._cache
        if cached is not None and cached.version == version:
            return cached
        rows = table.search().select(["key", TERMS]).with_row_id(True).limit(None).to_arrow()
        keys = rows.column("key").to_pylist()
        texts = _Texts(version, {int(r): i for i, r in enumerate(rows.column("_rowid").to_pylist())},
                       {k: i for i, k in enumerate(keys)}, keys,
                       rows.column(TERMS).combine_chunks())
        with self._lock:
            self._cache = texts
        return texts

    def search(self, table: Any, queries: Sequence[QueryTerms],
               k: int) -> list[list[RegionScore]]:
        """The top ``k`` regions by BM25 per query."""
        from lancedb.query import DocumentGranularity, MatchQuery

        self.ensure(table)
        texts = self._texts(table)
        out: list[list[RegionScore]] = []
        for query in queries:
            text = query.match_text()
            if not text or k <= 0:
                out.append([])
                continue
            hits = (table.search(MatchQuery(text, TERMS,
                                            document_granularity=DocumentGranularity.LIST_ELEMENT),
                                 query_type="fts")
                    .select(["_doc_index", "_score"]).with_row_id(True).limit(k).to_arrow())
            found = []
            for row, where, score in zip(hits.column("_rowid").to_pylist(),
                                         hits.column("_doc_index").to_pylist(),
                                         hits.column("_score").to_pylist()):
                at = texts.row_of.get(int(row))
                if at is not None:  # None: written after the cache was read; next time
                    found.append(RegionScore(texts.keys[at], int(where[-1]), float(score)))
            out.append(found)
        return out

    def page_terms(self, table: Any, keys: Sequence[str]) -> dict[str, list[str]]:
        """``key -> terms per region`` for these pages (the evidence of candidates)."""
        self.ensure(table)
        texts = self._texts(table)
        return {key: list(texts.terms[texts.key_of[key]].as_py() or ())
                for key in keys if key in texts.key_of}


@dataclass(frozen=True)
class _Texts:
    version: int
    row_of: dict[int, int]  # row id -> position
    key_of: dict[str, int]  # key -> position
    keys: list[str]
    terms: Any  # pa.ListArray, per position the regions' terms

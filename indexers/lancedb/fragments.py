"""Pages written by many processes as Lance fragments, committed by one.

Distributed indexing (``retriever.distributed.ray_index``) encodes pages on many workers.
Each worker writes what it encoded straight into the collection's table as *uncommitted*
Lance fragments (data files no version refers to yet) and hands back their metadata, a
small JSON object. One coordinator then commits a set of fragments with a single
``Update`` transaction, which in the same commit deletes the stored pages of the
documents they replace. So:

* search never sees a page before its whole document is committed;
* a job that dies before a commit leaves the table at its previous version; the data
  files it wrote are unreferenced, and ``collections optimize`` (Lance's cleanup)
  removes them;
* a replaced document never coexists with its new version, as in ``Indexer.replace``.

Both halves work on a local directory or an object-store URI (``storage_options``); on
object storage Lance commits a new version with a conditional put, so two committers
cannot both win.
"""

from __future__ import annotations

__all__ = ["FragmentWriter", "commit_fragments", "LanceFragmentCommits", "TABLE_NAME"]

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from retriever.errors import MissingDependencyError, RetrieverError
from retriever.manifest import Manifest
from retriever.records import check_records, with_paths
from retriever.types import PageRecord

from . import arrow as arrow_io

TABLE_NAME = "pages"  # the collection's one table

#: a fragment's rows at most: Lance's own default row group is 1024 rows, and workers write
#: a batch of pages at a time, far fewer
_MAX_ROWS_PER_FILE = 65_536


def _lance() -> Any:
    try:
        import lance
    except ImportError as exc:  # lancedb installs without the Python Lance package
        raise MissingDependencyError(
            "distributed indexing writes Lance fragments with the pylance package",
            hint="pip install 'vision-retriever[ray]'") from exc
    return lance


@dataclass(frozen=True)
class FragmentWriter:
    """What a worker needs to write pages into one collection's table: picklable plain
    data (the table's URI, its Arrow schema, the manifest and the storage options)."""

    uri: str
    schema: Any  # pyarrow.Schema
    manifest: Manifest
    collection: str
    storage_options: Mapping[str, str] = field(default_factory=dict)

    def write(self, records: Sequence[PageRecord],
              paths: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """Write ``records`` (given ``paths`` per document, as ``Indexer.replace`` would
        store them) as uncommitted fragments; -> their metadata as JSON strings."""
        if not records:
            return []
        check_records(records, self.manifest, self.collection)
        rows = with_paths(records, paths or {})
        return self.write_arrow(arrow_io.records_to_batch(rows, self.schema))

    def write_arrow(self, data: Any) -> list[str]:
        """Write rows already in the table's schema (a pyarrow Table or RecordBatch)."""
        fragments = _lance().fragment.write_fragments(
            data, self.uri, self.schema, max_rows_per_file=_MAX_ROWS_PER_FILE,
            storage_options=dict(self.storage_options) or None)
        return [json.dumps(f.to_json()) for f in fragments]


def commit_fragments(uri: str, fragments: Sequence[str], *, delete: Sequence[str] = (),
                     storage_options: Mapping[str, str] | None = None,
                     collection: str = "") -> int:
    """Commit ``fragments`` (``FragmentWriter.write``'s JSON) and delete every stored page
    of the ``delete`` documents, in one Lance ``Update`` transaction; -> pages deleted.

    The deletions are computed on the version read here and the commit names that
    version, so a commit by someone else in between makes Lance check for conflicts
    instead of silently losing either write.
    """
    lance = _lance()
    options = dict(storage_options or {}) or None
    dataset = lance.dataset(uri, storage_options=options)
    new = [lance.fragment.FragmentMetadata.from_json(text) for text in fragments]
    updated, removed, deleted = [], [], 0
    if delete:
        where = f"doc_id IN {arrow_io.sql_string_list(list(dict.fromkeys(delete)))}"
        for fragment in dataset.get_fragments():
            hits = fragment.count_rows(where)
            if not hits:
                continue
            deleted += hits
            kept = fragment.delete(where)  # a new deletion file; nothing committed yet
            if kept is None:  # every row went
                removed.append(fragment.fragment_id)
            else:
                updated.append(kept)
    if not new and not updated and not removed:
        return 0
    operation = lance.LanceOperation.Update(removed_fragment_ids=removed,
                                            updated_fragments=updated, new_fragments=new)
    try:
        lance.LanceDataset.commit(uri, operation, read_version=dataset.version,
                                  storage_options=options)
    except Exception as exc:
        raise RetrieverError(
            f"committing {len(new)} fragments to collection {collection!r} failed: {exc}",
            hint="the collection is unchanged; run the same index command again") from exc
    return deleted


class LanceFragmentCommits:
    """A mixin of ``LanceDBIndexer``: the fragment-writing half handed to workers, and
    the commit of what they wrote. It uses the indexer's ``uri``, ``path``, ``storage``,
    ``manifest``, ``name``, ``_table``, ``_relinked_rows`` and ``_refresh_fulltext``."""

    @property
    def table_uri(self) -> str:
        """The Lance dataset of the ``pages`` table: a directory, or a URI in a bucket."""
        return f"{(self.uri or str(self.path)).rstrip('/')}/{TABLE_NAME}.lance"

    def fragment_writer(self) -> FragmentWriter:
        """What a worker process needs to write pages into this table (picklable)."""
        options = dict(self.storage.options) if self.storage is not None else {}
        return FragmentWriter(self.table_uri, self._table.schema, self.manifest, self.name,
                              options)

    def commit_fragments(self, fragments: Sequence[str], *, delete: Sequence[str] = (),
                         paths: Mapping[str, Sequence[str]] | None = None) -> int:
        """Commit fragments that workers wrote, delete the ``delete`` documents and give
        stored documents new ``paths``, in one commit; -> pages deleted.

        Relinked documents are rewritten: their rows, with the new paths, go into one more
        fragment written here, and their old rows are deleted by the same commit.
        """
        relink = dict(paths or {})
        fragments, rewritten = list(fragments), 0
        if relink:
            rows = self._relinked_rows(list(relink), relink, self._table.schema)
            fragments += self.fragment_writer().write_arrow(rows)
            rewritten = rows.num_rows  # deleted and written again: not gone
        deleted = commit_fragments(
            self.table_uri, fragments, delete=[*delete, *relink],
            storage_options=dict(self.storage.options) if self.storage is not None else None,
            collection=self.name)
        self._refresh_fulltext()
        return deleted - rewritten

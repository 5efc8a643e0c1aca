"""The Arrow side of the LanceDB indexer: the ``pages`` schema and record conversions.

One row per page. Vectors are ``list<fixed_size_list<float16|float32, d>>`` (LanceDB's
multivector column type, so its own MaxSim search works on the same table), boxes are
``list<fixed_size_list<float32, 4>>`` with one box per vector, regions are JSON text in
the flat form of ``retriever.regions.columns`` (tables written before it hold the JSON of
``[Region.to_dict()]``; both are read). Records read back carry ``LazyRegions``: nothing
is parsed until grounding or the caller reads them. ``terms`` holds, per top-level region,
its analyzed terms for the full-text index (``fulltext.py``; tables made before it get it
on first lexical search). The manifest rides in the schema metadata, so the table says how
it was built and reopens without the caller retyping it.

File names: ``paths`` (``list<binary>``) holds every path the page's document is recorded
at, the source first, as the file system's bytes (``os.fsencode``), so a name that is not
valid UTF-8 is kept exactly; read it back with ``os.fsdecode``. ``source`` (a string) is the
first of them made printable (``retriever.filenames.printable``: an undecodable byte
becomes ``\\xNN``), for people and SQL. Tables made before ``paths`` existed have only
``source``; they are read and written as they are (one path per document).
"""

from __future__ import annotations

__all__ = [
    "MANIFEST_KEY",
    "COUNTS",
    "STORAGE_DTYPES",
    "build_schema",
    "manifest_from_schema",
    "storage_dtype_of",
    "records_to_batch",
    "with_new_paths",
    "table_to_records",
    "nested_counts",
    "nested_vectors_to_numpy",
    "sql_string_list",
    "has_paths",
    "paths_column",
    "paths_of_rows",
]

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from retriever.errors import RetrieverError
from retriever.filenames import printable
from retriever.manifest import Manifest
from retriever.records import record_paths
from retriever.regions.columns import LazyRegions, regions_json
from retriever.types import MultiVector, PageRecord

from . import fulltext

MANIFEST_KEY = b"retriever.manifest"
#: per page, the member count of each vector (collections built with a compressor)
COUNTS = "counts"
#: storage dtype name -> (arrow type, numpy dtype)
STORAGE_DTYPES: dict[str, tuple[pa.DataType, type[np.floating]]] = {
    "float16": (pa.float16(), np.float16),
    "float32": (pa.float32(), np.float32),
}


def build_schema(manifest: Manifest, dtype: str) -> pa.Schema:
    """The ``pages`` table schema for ``manifest``'s dimension, manifest in its metadata."""
    if dtype not in STORAGE_DTYPES:
        raise RetrieverError(
            f"unknown vector storage dtype {dtype!r}", hint=f"use one of {sorted(STORAGE_DTYPES)}"
        )
    from .codes import code_fields  # codes.py imports this module

    value_type = STORAGE_DTYPES[dtype][0]
    dim = manifest.encoder.dim
    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),  # doc_id:page
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("page_number", pa.int32(), nullable=False),
            pa.field("width", pa.int32(), nullable=False),
            pa.field("height", pa.int32(), nullable=False),
            pa.field("has_text_layer", pa.bool_(), nullable=False),
            pa.field("n_vectors", pa.int32(), nullable=False),
            pa.field("vectors", pa.list_(pa.list_(value_type, dim)), nullable=False),
            pa.field("boxes", pa.list_(pa.list_(pa.float32(), 4)), nullable=False),
            pa.field("regions", pa.string(), nullable=False),  # JSON, regions.columns form
            pa.field("paths", pa.list_(pa.binary()), nullable=False),  # os.fsencode, source 1st
            fulltext.terms_field(),  # per region its analyzed terms (lexical search)
            *code_fields(manifest.quantization, dim),  # quantized collections only
            # compressed collections only: how many encoder vectors each vector stands for
            *([pa.field(COUNTS, pa.list_(pa.int32()), nullable=False)]
              if manifest.compressor else []),
        ],
        metadata={MANIFEST_KEY: manifest.to_json().encode()},
    )


def manifest_from_schema(schema: pa.Schema, collection: str) -> Manifest:
    raw = (schema.metadata or {}).get(MANIFEST_KEY)
    if raw is None:
        raise RetrieverError(
            f"collection {collection!r} has no vision-retriever manifest in its table metadata",
            hint="it was not created by vision-retriever; index into a new collection",
        )
    return Manifest.from_json(raw.decode())


def storage_dtype_of(schema: pa.Schema) -> str:
    value_type = schema.field("vectors").type.value_type.value_type
    for name, (arrow_type, _) in STORAGE_DTYPES.items():
        if value_type == arrow_type:
            return name
    raise RetrieverError(f"unsupported vector type {value_type} in the pages table")


def _nested(flat: np.ndarray, lengths: Sequence[int], arrow_type: pa.DataType,
            width: int) -> pa.ListArray:
    """(N, width) rows + per-page lengths -> list<fixed_size_list<arrow_type, width>>."""
    inner = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1), type=arrow_type), width)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)  # (P+1,)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), inner)


def has_paths(schema: pa.Schema) -> bool:
    return "paths" in schema.names


def paths_column(paths: Sequence[Sequence[str]]) -> pa.Array:
    """Per row, its paths as file-system bytes (lossless for any name)."""
    return pa.array([[os.fsencode(p) for p in row] for row in paths], pa.list_(pa.binary()))


def paths_of_rows(table: pa.Table) -> list[tuple[str, ...]]:
    """Per row, its document's paths (``os.fsdecode``), or its source in an older table."""
    if has_paths(table.schema):
        return [tuple(os.fsdecode(b) for b in row) for row in table.column("paths").to_pylist()]
    return [(s,) for s in table.column("source").to_pylist()]


def with_new_paths(table: pa.Table, paths: Mapping[str, Sequence[str]],
                   schema: pa.Schema) -> pa.Table:
    """Stored rows (every column) with the source and paths of their document in ``paths``."""
    docs = table.column("doc_id").to_pylist()
    columns = {name: table.column(name) for name in schema.names}
    columns["source"] = pa.array([printable(paths[d][0]) for d in docs], pa.string())
    if has_paths(schema):
        columns["paths"] = paths_column([paths[d] for d in docs])
    return pa.Table.from_arrays([columns[n] for n in schema.names], schema=schema)


def records_to_batch(records: Sequence[PageRecord], schema: pa.Schema) -> pa.RecordBatch:
    """Convert pages to one Arrow batch of ``schema`` (vectors cast to the storage dtype)."""
    vec_field = schema.field("vectors").type.value_type  # fixed_size_list<float, d>
    dim = vec_field.list_size
    np_dtype = STORAGE_DTYPES[storage_dtype_of(schema)][1]
    lengths = [r.embedding.n for r in records]
    vectors = (  # (sum n, d)
        np.concatenate([r.embedding.vectors for r in records]).astype(np_dtype, copy=False)
        if records else np.zeros((0, dim), np_dtype)
    )
    boxes = (  # (sum n, 4)
        np.concatenate([r.embedding.boxes for r in records]).astype(np.float32, copy=False)
        if records else np.zeros((0, 4), np.float32)
    )
    row_paths = [record_paths(r) for r in records]
    columns = [
        pa.array([r.key for r in records], pa.string()),
        pa.array([r.doc_id for r in records], pa.string()),
        pa.array([printable(p[0]) for p in row_paths], pa.string()),
        pa.array([r.page_number for r in records], pa.int32()),
        pa.array([r.width for r in records], pa.int32()),
        pa.array([r.height for r in records], pa.int32()),
        pa.array([bool(r.has_text_layer) for r in records], pa.bool_()),
        pa.array(lengths, pa.int32()),
        _nested(vectors, lengths, vec_field.value_type, dim),
        _nested(boxes, lengths, pa.float32(), 4),
        pa.array([regions_json(r.regions) for r in records], pa.string()),
    ]
    if has_paths(schema):
        columns.append(paths_column(row_paths))
    from .codes import code_columns

    # codes of the vectors as stored (after the float16 cast), so both stages agree
    columns += code_columns(schema, vectors.astype(np.float32), lengths)
    columns = fulltext.with_terms(schema, columns, records)  # tables older than it: none
    if COUNTS in schema.names:  # the last field of a compressed collection
        columns.append(pa.array([r.embedding.weights().astype(np.int32) for r in records],
                                pa.list_(pa.int32())))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def nested_vectors_to_numpy(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """list<fixed_size_list<float, w>> -> (rows (N, w) in the stored dtype, offsets (P+1,))."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    width = column.type.value_type.list_size
    mats, lengths = [], []
    for chunk in chunks:
        # flatten() honours slice offsets, unlike .values
        mats.append(chunk.flatten().flatten().to_numpy(zero_copy_only=False).reshape(-1, width))
        lengths.append(chunk.value_lengths().to_numpy(zero_copy_only=False))
    offsets = np.zeros(sum(len(x) for x in lengths) + 1, dtype=np.int64)  # (P+1,)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    dtype = mats[0].dtype if mats else np.float32
    rows = np.concatenate(mats) if mats else np.zeros((0, width), dtype)  # (N, w)
    return rows, offsets


def nested_counts(column: pa.ChunkedArray | pa.Array, offsets: np.ndarray) -> np.ndarray:
    """list<int32> per page -> (N,) counts, checked against the vectors' ``offsets``."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    flat = [c.flatten().to_numpy(zero_copy_only=False) for c in chunks]
    counts = np.concatenate(flat).astype(np.int32) if flat else np.zeros(0, np.int32)
    if counts.size != int(offsets[-1]):
        raise RetrieverError("pages table is inconsistent: vectors and counts differ in count")
    return counts


def table_to_records(table: pa.Table) -> list[PageRecord]:
    """Rows of the pages table (all columns) -> PageRecords, in row order."""
    vectors, offsets = nested_vectors_to_numpy(table.column("vectors"))
    boxes, box_offsets = nested_vectors_to_numpy(table.column("boxes"))
    if not np.array_equal(offsets, box_offsets):
        raise RetrieverError("pages table is inconsistent: vectors and boxes differ in count")
    out: list[PageRecord] = []
    cols = {name: table.column(name).to_pylist() for name in (
        "doc_id", "page_number", "width", "height", "has_text_layer", "regions")}
    counts = (nested_counts(table.column(COUNTS), offsets)
              if COUNTS in table.column_names else None)
    row_paths = paths_of_rows(table)
    for i in range(table.num_rows):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        # copies, so a record does not pin the whole Arrow batch in memory
        emb = MultiVector(vectors[lo:hi].copy(), boxes[lo:hi].copy(), check_norm=False,
                          counts=None if counts is None else counts[lo:hi].copy())
        out.append(PageRecord(
            doc_id=cols["doc_id"][i],
            source=row_paths[i][0],
            page_number=int(cols["page_number"][i]),
            width=int(cols["width"][i]),
            height=int(cols["height"][i]),
            embedding=emb,
            regions=LazyRegions(cols["regions"][i]),  # parsed on first use
            has_text_layer=bool(cols["has_text_layer"][i]),
            paths=row_paths[i],
        ))
    return out


def sql_string_list(values: Iterable[str]) -> str:
    """``('a', 'it''s')``: a SQL IN-list with quotes escaped the SQL way."""
    return "(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"

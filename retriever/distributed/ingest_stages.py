"""What the workers of a distributed indexing job run (``ray_index.py`` wires them up).

Three Ray Data stages, each the same page code a local run uses:

1. ``open_ranges`` (tasks): open a document (``pagework.open_job``) and split it into page
   ranges, so that one long document spreads over many workers;
2. ``produce_pages`` (tasks): rasterize, read the text layer and OCR one range
   (``pagework.produce_range``);
3. ``PageEncoder`` (actors, one model each): encode a batch of pages document by
   document, compress them if the collection does, and write them into the collection's
   table as uncommitted Lance fragments (``FragmentWriter``).

The job's input rows are a document's plain columns (``doc_id``, ``source``, ``paths``,
``path``); after the first stage, rows carry one column, ``item``, a ``WorkItem``. The
last stage turns its batch into one row of ``token``, a JSON report for the coordinator
(``ledger.py``): the fragments written
and the page keys in each, the pages each document has (``expect``), and the documents
that failed with the same reasons a local run gives. Items travel between Ray workers in
Ray's own object store; nothing here reads a pickle from disk.
"""

from __future__ import annotations

__all__ = ["EncoderRecipe", "WorkItem", "failure_of", "open_ranges", "produce_pages",
           "PageEncoder"]

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BadInputError, MissingDependencyError, RetrieverError
from ..ingest.pagework import (
    DocumentJob,
    ProducerSettings,
    RangeTask,
    open_job,
    produce_range,
    split_ranges,
)
from ..pipeline import no_text_error, page_batch
from ..types import FileFailure, Page, PageRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderRecipe:
    """How a worker builds the collection's encoder (and compressor) for itself: the
    registry name and options the driver's encoder was made with."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    compress: str | None = None  # the manifest's compressor, NAME:FACTOR

    def build(self) -> Any:
        from ..plugin_host import get_registry

        return get_registry().create("encoder", self.name, **dict(self.options))


@dataclass
class WorkItem:
    """One row of the job: a document to open, a range to produce, a page to encode, or
    a note for the coordinator (``kind`` says which)."""

    kind: str  # "document", "range", "page", "expect", "failed", "fatal"
    doc_id: str
    source: str
    paths: tuple[str, ...] = ()  # what the document's pages record (``FilePlan.paths``)
    path: str = ""  # the file to read ("document")
    task: RangeTask | None = None
    page: Page | None = None
    pages: int = 0  # "expect": the document's page count
    failure: FileFailure | None = None
    message: str = ""  # "fatal": a missing dependency stops the job
    hint: str = ""


def failure_of(source: str, exc: BaseException) -> FileFailure:
    """The report entry a local run gives a file that raised ``exc`` (``index_files``)."""
    if isinstance(exc, BadInputError):
        return FileFailure(exc.path, exc.reason, exc.detail)
    if isinstance(exc, RetrieverError):
        return FileFailure(source, "error", exc.message)
    return FileFailure(source, "error", f"{type(exc).__name__}: {exc}")


def _failed(item: WorkItem, exc: BaseException) -> WorkItem:
    if isinstance(exc, MissingDependencyError):
        return WorkItem("fatal", item.doc_id, item.source, message=exc.message,
                        hint=exc.hint or "")
    log.debug("indexing %r failed", item.source, exc_info=True)
    return WorkItem("failed", item.doc_id, item.source, failure=failure_of(item.source, exc))


_SET_UP: set[int] = set()


def run_setup(setup: Callable[[], None] | None) -> None:
    """Run the job's ``setup`` (e.g. register a plugin) once in this worker process."""
    if setup is not None and id(setup) not in _SET_UP:
        setup()
        _SET_UP.add(id(setup))


def open_ranges(row: dict[str, Any], *, settings: ProducerSettings, range_pages: int,
                setup: Callable[[], None] | None) -> Iterator[dict[str, Any]]:
    """A document's ``expect`` note and its page ranges, or its failure."""
    run_setup(setup)
    # the job's input rows are plain columns (Arrow keeps them as they are)
    item = WorkItem("document", row["doc_id"], row["source"], tuple(row["paths"]),
                    path=row["path"])
    job = DocumentJob(Path(item.path), item.doc_id, item.source)
    try:
        document = open_job(job, settings)
        tasks = split_ranges(document, job, range_pages)
    except Exception as exc:  # noqa: BLE001 - reported for this file, the job goes on
        yield {"item": _failed(item, exc)}
        return
    yield {"item": WorkItem("expect", item.doc_id, item.source, pages=document.page_count)}
    for task in tasks:
        yield {"item": WorkItem("range", item.doc_id, item.source, item.paths, task=task)}


def produce_pages(row: dict[str, Any], *, settings: ProducerSettings,
                  setup: Callable[[], None] | None) -> Iterator[dict[str, Any]]:
    """One range's pages with their regions; other items pass through."""
    run_setup(setup)
    item: WorkItem = row["item"]
    if item.kind != "range" or item.task is None:
        yield row
        return
    try:
        pages = list(produce_range(item.task, settings))  # a range is a few pages
    except Exception as exc:  # noqa: BLE001 - reported for this file, the job goes on
        yield {"item": _failed(item, exc)}
        return
    for page in pages:
        yield {"item": WorkItem("page", item.doc_id, item.source, item.paths, page=page)}


class PageEncoder:
    """A Ray Data actor: one encoder, pages in, one ``token`` row out per batch."""

    def __init__(self, recipe: EncoderRecipe, writer: Any,
                 setup: Callable[[], None] | None) -> None:
        run_setup(setup)
        from ..compression import batch_compressor

        self.encoder = recipe.build()
        self.compress = batch_compressor(recipe.compress)
        self.writer = writer  # FragmentWriter of the collection's backend

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        items: Sequence[WorkItem] = list(batch["item"])
        notes: list[dict[str, Any]] = []
        by_doc: dict[str, list[WorkItem]] = {}
        for item in items:
            if item.kind == "page":
                by_doc.setdefault(item.doc_id, []).append(item)
            else:
                notes.append(_note(item))
        records: list[PageRecord] = []
        docs: dict[str, dict[str, Any]] = {}
        for doc_id, pages in by_doc.items():
            try:
                encoded = self._encode([p.page for p in pages])  # type: ignore[misc]
            except Exception as exc:  # noqa: BLE001 - one document's failure, not the job's
                notes.append(_note(_failed(pages[0], exc)))
                continue
            records += encoded
            docs[doc_id] = {"pages": [r.page_number for r in encoded],
                            "regions": any(r.regions for r in encoded)}
        paths = {doc: list(pages[0].paths) for doc, pages in by_doc.items() if pages[0].paths}
        fragments = self.writer.write(records, paths) if records else []
        token = {"fragments": fragments, "docs": docs, "notes": notes}
        return {"token": [json.dumps(token)]}

    def _encode(self, pages: list[Page]) -> list[PageRecord]:
        per_call = page_batch(self.encoder)
        records: list[PageRecord] = []
        for start in range(0, len(pages), per_call):
            chunk = pages[start : start + per_call]
            vectors = self.encoder.encode_pages(chunk)
            if self.compress is not None:
                vectors = self.compress(vectors, [p.regions for p in chunk])
            records += [PageRecord.from_page(p, mv) for p, mv in zip(chunk, vectors)]
        return records


def _note(item: WorkItem) -> dict[str, Any]:
    """A non-page item as plain JSON for the coordinator."""
    note: dict[str, Any] = {"kind": item.kind, "doc_id": item.doc_id, "source": item.source}
    if item.kind == "expect":
        note["pages"] = item.pages
    elif item.kind == "failed" and item.failure is not None:
        note["failure"] = asdict(item.failure)
    elif item.kind == "fatal":
        note["message"], note["hint"] = item.message, item.hint
    return note


def no_text_failure(source: str, encoder_name: str) -> FileFailure:
    """The failure a local run gives a document without text under a text encoder."""

    class _Named:  # no_text_error wants an encoder; only its name is read
        name = encoder_name

    return failure_of(source, no_text_error(source, _Named()))  # type: ignore[arg-type]

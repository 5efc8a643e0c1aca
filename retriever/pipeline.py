"""From a document's pages (with regions) to encoded page batches.

Pages come from ``ingest.producer.PageProducer``: worker processes rasterize, read text
layers and run OCR ahead of the encoder, so this module only batches pages for the
encoder and hands each encoded batch to a sink (the staging area while indexing, a list in
``document_records``). Pages are rendered only when someone needs the pixels: an image
encoder, or OCR for a page without text.
"""

from __future__ import annotations

__all__ = ["PAGE_BATCH", "Compress", "DocumentOutcome", "document_records",
           "encode_document", "page_batch"]

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInputError
from .ingest.producer import (
    DocumentEnd,
    DocumentFailed,
    DocumentJob,
    PageProducer,
    PageReady,
)
from .protocols import Encoder, OCREngine
from .types import MultiVector, Page, PageRecord, Region

#: pages encoded together when an encoder does not say (``Encoder.page_batch``); also
#: the unit of staging, so at most this many pages are encoded again after a crash
PAGE_BATCH = 8

Event = PageReady | DocumentEnd | DocumentFailed
#: a collection's compressor over one encoded batch and its pages' regions
#: (``compression.compress_all``)
Compress = Callable[[list[MultiVector], list[Sequence[Region]]], list[MultiVector]]


def page_batch(encoder: Encoder) -> int:
    """Pages handed to one ``encode_pages`` call: the encoder's batch, so that
    ``--batch-size`` (or its per-device default) is the batch the model really sees."""
    asked = getattr(encoder, "page_batch", None)
    return max(1, int(asked)) if asked else PAGE_BATCH


@dataclass(frozen=True)
class DocumentOutcome:
    """One document through the encoder: its page count, the pages encoded now, and
    whether any encoded page had regions."""

    page_count: int
    encoded: int
    any_regions: bool


def no_text_error(path: Path | str, encoder: Encoder) -> BadInputError:
    """A text encoder gives a document without any text no vectors at all: say so,
    instead of indexing pages that no query can ever find."""
    return BadInputError(str(path), "no-text",
                         f"encoder {encoder.name} reads text, and no page has any",
                         hint="enable OCR (drop --no-ocr), or index it with an image "
                              "encoder such as colpali/v1.3")


def encode_document(job: DocumentJob, events: Iterable[Event], encoder: Encoder,
                    sink: Callable[[list[PageRecord]], None],
                    on_page: Callable[[Page], None] | None = None, *,
                    compress: Compress | None = None) -> DocumentOutcome:
    """Encode the pages of ``job`` as ``events`` bring them, one batch per sink call.

    ``events`` are this job's, up to and including its ``DocumentEnd`` (or
    ``DocumentFailed``, whose error is raised). Pixels are dropped as soon as a batch is
    encoded, so memory stays about one batch. ``compress`` shrinks each batch's vectors
    before the sink sees them (staged and stored pages are the compressed ones).
    """
    batch: list[Page] = []
    encoded, any_regions = 0, False
    per_call = page_batch(encoder)

    def flush() -> None:
        nonlocal encoded, any_regions
        vectors: list[MultiVector] = encoder.encode_pages(batch)
        if compress is not None:
            vectors = compress(vectors, [p.regions for p in batch])
        records = [PageRecord.from_page(p, mv) for p, mv in zip(batch, vectors)]
        batch.clear()
        any_regions = any_regions or any(r.regions for r in records)
        encoded += len(records)
        sink(records)

    for event in events:
        if isinstance(event, DocumentFailed):
            raise event.error
        if isinstance(event, DocumentEnd):
            if batch:
                flush()
            return DocumentOutcome(event.page_count, encoded, any_regions)
        page = event.page
        page.source = job.source
        if not encoder.needs_image:
            page.image = None  # free the pixels as soon as OCR is done with them
        batch.append(page)
        if on_page is not None:
            on_page(page)
        if len(batch) >= per_call:
            flush()
    raise RuntimeError(f"the page producer ended inside {job.path}")  # a producer bug


def producer_for(encoder: Encoder, ocr: OCREngine | None, *, max_pixels: int,
                 workers: int) -> PageProducer:
    """The page producer an encoder needs (its DPI, whether it looks at pixels)."""
    return PageProducer(workers=workers, dpi=encoder.dpi, max_pixels=max_pixels,
                        needs_image=encoder.needs_image, ocr=ocr)


def document_records(
    path: Path,
    encoder: Encoder,
    ocr: OCREngine | None,
    *,
    max_pixels: int,
    doc_id: str | None = None,
    source: str | None = None,
    on_page: Callable[[Page], None] | None = None,
) -> list[PageRecord]:
    """Every page of ``path`` as a record with regions and vectors, in memory, in this
    process (raises BadInputError). Indexing stages batches instead (``indexing.py``).

    ``doc_id`` saves hashing the file again when the caller already did; ``source`` is the
    path recorded for the pages (default: ``path`` as given).
    """
    from .ingest import content_hash

    job = DocumentJob(Path(path), doc_id or content_hash(Path(path)), source or str(path))
    records: list[PageRecord] = []
    with producer_for(encoder, ocr, max_pixels=max_pixels, workers=0) as producer:
        outcome = encode_document(job, producer.run([job]), encoder, records.extend,
                                  on_page)
    if getattr(encoder, "needs_regions", False) and not outcome.any_regions:
        raise no_text_error(path, encoder)
    return records

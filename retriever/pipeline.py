"""From one file to page records: regions (text layer or OCR), then vectors.

Regions come from a PDF's own text layer wherever a page has one (exact boxes, no OCR
error) and from the OCR engine otherwise. Pages are rendered only when someone needs the
pixels: an image encoder, or OCR for a page without text.
"""

from __future__ import annotations

__all__ = ["PAGE_BATCH", "document_records", "page_batch"]

from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import BadInputError
from .ingest import open_document
from .protocols import Encoder, OCREngine
from .regions import text_layer_regions
from .types import MultiVector, Page, PageRecord, Region

#: pages encoded together when an encoder does not say (``Encoder.page_batch``); also
#: bounds memory for long PDFs
PAGE_BATCH = 8


def page_batch(encoder: Encoder) -> int:
    """Pages handed to one ``encode_pages`` call: the encoder's batch, so that
    ``--batch-size`` (or its per-device default) is the batch the model really sees."""
    asked = getattr(encoder, "page_batch", None)
    return max(1, int(asked)) if asked else PAGE_BATCH


def _pages_with_regions(
    path: Path, encoder: Encoder, ocr: OCREngine | None, max_pixels: int, doc_id: str | None,
    source: str,
) -> Iterator[Page]:
    probe = open_document(path, dpi=encoder.dpi, max_pixels=max_pixels, render=False,
                          doc_id=doc_id)
    layer: dict[int, list[Region]] = text_layer_regions(path) if probe.kind == "pdf" else {}
    missing_text = any(not layer.get(n) for n in range(1, probe.page_count + 1))
    render = encoder.needs_image or (ocr is not None and missing_text)
    document = probe.with_render(True) if render else probe
    for page in document.pages():
        page.source = source
        own_text = layer.get(page.page_number) or []
        if own_text:
            page.regions, page.has_text_layer = own_text, True
        elif ocr is not None and page.image is not None:
            page.regions = ocr.recognize(page.image)
        if not encoder.needs_image:
            page.image = None  # free the pixels as soon as OCR is done with them
        yield page


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
    """Every page of ``path`` as a record with regions and vectors (raises BadInputError).

    ``doc_id`` saves hashing the file again when the caller already did; ``source`` is the
    path recorded for the pages (default: ``path`` as given).
    """
    records: list[PageRecord] = []
    batch: list[Page] = []

    def flush() -> None:
        vectors: list[MultiVector] = encoder.encode_pages(batch)
        records.extend(PageRecord.from_page(p, mv) for p, mv in zip(batch, vectors))
        for page in batch:
            page.image = None
        batch.clear()

    per_call = page_batch(encoder)
    pages = _pages_with_regions(path, encoder, ocr, max_pixels, doc_id, source or str(path))
    for page in pages:
        batch.append(page)
        if on_page is not None:
            on_page(page)
        if len(batch) >= per_call:
            flush()
    if batch:
        flush()
    if getattr(encoder, "needs_regions", False) and not any(r.regions for r in records):
        # A text encoder gives such a document no vectors at all: say so, instead of
        # indexing pages that no query can ever find.
        raise BadInputError(str(path), "no-text",
                            f"encoder {encoder.name} reads text, and no page has any",
                            hint="enable OCR (drop --no-ocr), or index it with an image "
                                 "encoder such as colpali/v1.3")
    return records

"""From one file to page records: regions (text layer or OCR), then vectors.

Regions come from a PDF's own text layer wherever a page has one (exact boxes, no OCR
error) and from the OCR engine otherwise. Pages are rendered only when someone needs the
pixels: an image encoder, or OCR for a page without text.
"""

from __future__ import annotations

__all__ = ["PAGE_BATCH", "document_records"]

from collections.abc import Callable, Iterator
from pathlib import Path

from .ingest import open_document
from .protocols import Encoder, OCREngine
from .regions import text_layer_regions
from .types import MultiVector, Page, PageRecord, Region

PAGE_BATCH = 8  # pages encoded together; bounds memory for long PDFs


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

    pages = _pages_with_regions(path, encoder, ocr, max_pixels, doc_id, source or str(path))
    for page in pages:
        batch.append(page)
        if on_page is not None:
            on_page(page)
        if len(batch) >= PAGE_BATCH:
            flush()
    if batch:
        flush()
    return records

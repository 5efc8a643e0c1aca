"""Region crops come from the source page, at the region's box."""

from __future__ import annotations

import shutil

from PIL import Image

from repo_paths import SAMPLES
from retriever.ingest import content_hash, open_document
from retriever.types import Hit, RegionHit


def _hit(path, page=1, bbox=(0.1, 0.69, 0.9, 0.76)) -> Hit:
    return Hit(rank=1, score=1.0, doc_id=content_hash(path), source=str(path), page=page,
               page_width=1, page_height=1, regions=[RegionHit(bbox, "payment terms", 0.9)])


def test_crop_matches_the_region_box(tmp_path):
    from retriever.crops import save_region_crops

    invoice = SAMPLES / "invoice.pdf"
    hit = _hit(invoice)
    assert save_region_crops([hit], tmp_path / "crops", dpi=100) == []
    crop = Image.open(hit.regions[0].crop_path)
    page = open_document(invoice, dpi=100).page(1).image
    assert abs(crop.width - 0.8 * page.width) <= 0.02 * page.width
    assert abs(crop.height - 0.07 * page.height) <= 0.02 * page.height
    # The payment-terms paragraph is dark text on white: the crop is not blank.
    assert min(crop.convert("L").getdata()) < 100


def test_changed_or_missing_source_is_skipped_with_a_warning(tmp_path):
    from retriever.crops import save_region_crops

    copy = tmp_path / "invoice.pdf"
    shutil.copy(SAMPLES / "invoice.pdf", copy)
    hit = _hit(copy)
    shutil.copy(SAMPLES / "slide.pdf", copy)  # content changed after indexing
    warnings = save_region_crops([hit], tmp_path / "crops")
    assert len(warnings) == 1 and "changed since it was indexed" in warnings[0]
    assert hit.regions[0].crop_path is None
    copy.unlink()
    warnings = save_region_crops([hit], tmp_path / "crops")
    assert "not-found" in warnings[0] or "unreadable" in warnings[0]


def test_document_page_renders_one_page(tmp_path):
    report = open_document(SAMPLES / "annual-report.pdf", dpi=50)
    third = report.page(3)
    assert third.page_number == 3 and third.image is not None
    assert third.image.size == report.page_sizes[2]

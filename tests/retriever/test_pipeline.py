"""retriever.pipeline: how many pages go to the encoder at once, and text-less documents."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from retriever.errors import BadInputError
from retriever.pipeline import PAGE_BATCH, document_records, page_batch
from retriever.types import MultiVector


class _LineCounter:
    """A text encoder stand-in: one vector per region, and it records each call."""

    name, dim, kind, dpi = "test/lines", 4, "multi", 72
    needs_image, needs_regions = False, True

    def __init__(self, page_batch: int | None = None) -> None:
        self.calls: list[int] = []
        if page_batch is not None:
            self.page_batch = page_batch

    def encode_pages(self, pages):
        self.calls.append(len(pages))
        out = []
        for page in pages:
            n = len(page.regions)
            vectors = np.tile(np.eye(1, 4, dtype=np.float32), (n, 1))
            boxes = np.asarray([r.bbox for r in page.regions], np.float32).reshape(-1, 4)
            out.append(MultiVector(vectors, boxes))
        return out


def test_page_batch_follows_the_encoder():
    assert page_batch(_LineCounter()) == PAGE_BATCH
    assert page_batch(_LineCounter(page_batch=20)) == 20


def test_a_document_without_any_text_is_a_clear_failure_for_a_text_encoder(tmp_path):
    blank = tmp_path / "photo.png"
    Image.new("RGB", (300, 200), "white").save(blank)
    with pytest.raises(BadInputError) as info:
        document_records(blank, _LineCounter(), None, max_pixels=10**8)
    assert info.value.reason == "no-text" and "photo.png" in info.value.path
    assert "OCR" in (info.value.hint or "")


def test_text_pages_reach_the_encoder_in_its_batch(real_pdf):
    encoder = _LineCounter(page_batch=3)
    records = document_records(real_pdf, encoder, None, max_pixels=10**8)
    assert sum(encoder.calls) == len(records) and max(encoder.calls) == 3

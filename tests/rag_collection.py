"""The collection the RAG adapter tests search, and questions whose answers it holds.

Three sample PDFs indexed through the SDK with the default encoder (text/minilm, offline);
each question comes from samples/queries.json with a phrase of the paragraph that answers.
"""

from __future__ import annotations

from pathlib import Path

from repo_paths import SAMPLES

COLLECTION = "samples"
DOCS = [SAMPLES / "invoice.pdf", SAMPLES / "annual-report.pdf", SAMPLES / "slide.pdf"]

INVOICE_QUERY = "how much interest do I pay if I settle the invoice late?"
INVOICE_ANSWER = "Late payments incur interest of 1.5% per month"  # invoice.pdf page 1
TRAINEES_QUERY = "How many trainees joined through the apprenticeship scheme?"
TRAINEES_ANSWER = "96 apprentices in the kiln technician programme"  # annual-report.pdf p. 2


def build(home: Path) -> None:
    from retriever import Retriever

    # text layers only (ocr=None): the three PDFs have one, and tesseract is not needed
    with Retriever(COLLECTION, data_dir=home, ocr=None) as r:
        report = r.index(DOCS, workers=0)
    assert report.ok and len(report.indexed) == len(DOCS), report

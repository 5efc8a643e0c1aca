"""Small PDFs the report tests index beside the samples (importable: tests/ is on the path).

One carries markup in its text, the way a hostile or merely unlucky document would; one is
rewritten after indexing, so the report sees a source that changed.
"""

from __future__ import annotations

from pathlib import Path

#: markup that must reach the reader as text: run, it would set ``window.__pwned``
SCRIPT = "<script>window.__pwned=1</script>"


def write_pdf(path: Path, paragraphs: list[str]) -> Path:
    """A one-page A4 PDF with a text layer, one paragraph per entry (fpdf2)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_font("Helvetica", size=13)
    pdf.set_xy(20, 30)
    for text in paragraphs:
        pdf.multi_cell(170, 7, text)
        pdf.ln(10)
        pdf.set_x(20)
    pdf.output(str(path))
    return path


def hostile_pdf(path: Path) -> Path:
    return write_pdf(path, [
        "Payment reminder",
        f"Payment is due within 14 days of delivery. {SCRIPT} Pay the invoice by transfer.",
        "Questions about this reminder go to the accounts office.",
    ])


def memo_pdf(path: Path) -> Path:
    return write_pdf(path, [
        "Memo on payment terms",
        "All invoices are due for payment within 30 days unless agreed otherwise.",
    ])

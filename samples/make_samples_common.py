"""What the sample generators share: fonts, a fixed creation date, and an FPDF subclass."""

from __future__ import annotations

import datetime as _dt
import os

from fpdf import FPDF

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONT_REGULAR = os.path.join(FONT_DIR, "DejaVuSans.ttf")
FONT_BOLD = os.path.join(FONT_DIR, "DejaVuSans-Bold.ttf")
FIXED_DATE = _dt.datetime(2024, 1, 1, 12, 0, 0, tzinfo=_dt.timezone.utc)

# --------------------------------------------------------------------------- #
# PDF helpers
# --------------------------------------------------------------------------- #


class SamplePDF(FPDF):
    """FPDF with a fixed creation date and DejaVuSans (or Helvetica fallback)."""

    def __init__(self, *args, title: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.set_creation_date(FIXED_DATE)
        self.set_producer("vision-retriever samples")
        if title:
            self.set_title(title)
        self.set_author("vision-retriever sample generator")
        if os.path.exists(FONT_REGULAR) and os.path.exists(FONT_BOLD):
            self.add_font("DejaVu", "", FONT_REGULAR)
            self.add_font("DejaVu", "B", FONT_BOLD)
            self.family_name = "DejaVu"
        else:  # core font fallback; all sample text is plain ASCII
            self.family_name = "Helvetica"
        self.set_auto_page_break(auto=False)

    def font(self, size: float, bold: bool = False) -> None:
        self.set_font(self.family_name, "B" if bold else "", size)

    def heading(self, text: str, size: float = 13, gap_after: float = 2.5) -> None:
        self.font(size, bold=True)
        self.set_text_color(20, 60, 90)
        self.cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0, 0, 0)
        self.ln(gap_after)

    def para(self, text: str, size: float = 10.5, line_h: float = 5.4, gap_after: float = 7.0) -> None:
        self.font(size)
        self.multi_cell(0, line_h, text, align="J", new_x="LMARGIN", new_y="NEXT")
        self.ln(gap_after)


def _save(pdf: FPDF, path: str) -> None:
    pdf.output(path)

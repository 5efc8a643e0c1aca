#!/usr/bin/env python3
"""Generate the fictional sample documents used by the quickstart and the e2e tests.

Usage:  python samples/make_samples.py [output_dir]   (default: the folder of this script)

Only needs fpdf2, pillow and numpy.  The output is deterministic: fixed random
seeds, a fixed PDF creation date, and no timestamps in the PNG files, so running
the script twice produces byte-identical files.

All companies, people, addresses, account numbers and figures are invented.
"""

from __future__ import annotations

import datetime as _dt
import io
import os
import sys

import numpy as np
from fpdf import FPDF
from fpdf.fonts import FontFace
from PIL import Image, ImageDraw, ImageFont

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


# --------------------------------------------------------------------------- #
# 1. annual-report.pdf
# --------------------------------------------------------------------------- #

REVENUE = [  # EUR million, Q1..Q4
    ("Western Europe", (38.2, 41.5, 39.8, 46.1)),
    ("Central & Eastern Europe", (17.4, 19.9, 21.3, 24.6)),
    ("Nordics", (12.1, 13.4, 11.7, 15.2)),
    ("North America", (18.9, 20.2, 16.7, 22.8)),
    ("Asia-Pacific", (7.3, 7.9, 8.1, 8.9)),
]


def _report_footer(pdf: SamplePDF, page_no: int) -> None:
    pdf.set_y(-15)
    pdf.font(8)
    pdf.set_text_color(120, 120, 120)
    pdf.cell(0, 5, f"Calderwood Ceramics Group - Annual Report 2023 - page {page_no}", align="C")
    pdf.set_text_color(0, 0, 0)


def make_annual_report(path: str) -> None:
    pdf = SamplePDF(orientation="P", unit="mm", format="A4",
                    title="Calderwood Ceramics Group - Annual Report 2023")
    pdf.set_margins(22, 20, 22)

    # ---- page 1 -----------------------------------------------------------
    pdf.add_page()
    pdf.set_fill_color(20, 60, 90)
    pdf.rect(0, 0, 210, 8, style="F")
    pdf.set_y(22)
    pdf.font(24, bold=True)
    pdf.set_text_color(20, 60, 90)
    pdf.cell(0, 12, "Calderwood Ceramics Group", new_x="LMARGIN", new_y="NEXT")
    pdf.font(15)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(0, 8, "Annual Report 2023", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_draw_color(200, 120, 40)
    pdf.set_line_width(0.8)
    pdf.line(22, pdf.get_y() + 4, 188, pdf.get_y() + 4)
    pdf.ln(14)

    pdf.heading("Executive Summary")
    pdf.para(
        "In 2023 Calderwood Ceramics Group delivered net sales of EUR 412 million, an "
        "increase of 9.4 percent over the previous year, driven by strong demand for "
        "refractory kiln linings from the glass and steel industries. Operating profit "
        "rose to EUR 51 million and the operating margin improved to 12.4 percent, "
        "helped by higher prices for our glazed facade tiles and lower freight costs. "
        "Net debt fell to EUR 64 million. Reflecting the solid cash flow, the Board "
        "proposes a dividend of EUR 0.85 per share, up from EUR 0.70 a year earlier."
    )
    pdf.heading("Renewable Energy Installations")
    pdf.para(
        "During the year we commissioned 14,200 rooftop solar panels on our Ostrava and "
        "Porto plants, with a combined peak capacity of 6.1 megawatts. Together with a "
        "ten-year wind power purchase agreement signed with Baltic Breeze Energy, "
        "renewable sources now cover 63 percent of our electricity use, up from 38 "
        "percent in 2022. A heat-recovery system installed on tunnel kiln No. 4 captures "
        "exhaust heat to pre-dry unfired tiles, which cut the plant's natural gas "
        "consumption by 11 percent and avoided roughly 3,900 tonnes of CO2 emissions."
    )
    pdf.heading("Highlights of the Year")
    pdf.para(
        "We opened a design studio in Milan for architects and specifiers, launched the "
        "Saltmarsh range of frost-proof terracotta cladding, and completed the purchase "
        "of Vitrex Refractories, a family-owned maker of crucible liners based in Graz. "
        "Customer deliveries made on time reached 96 percent, the best result in the "
        "history of the group."
    )
    _report_footer(pdf, 1)

    # ---- page 2 -----------------------------------------------------------
    pdf.add_page()
    pdf.set_y(20)
    pdf.heading("Workforce and Hiring")
    pdf.para(
        "Headcount grew to 2,870 employees at year end. We hired 412 new colleagues, "
        "including 96 apprentices in the kiln technician programme that we run jointly "
        "with the Technical College of Aveiro. Voluntary staff turnover fell to 6.8 "
        "percent, and the lost-time injury rate dropped to 1.9 per million hours worked. "
        "Women now hold 34 percent of management positions, and every production "
        "employee received at least 20 hours of paid training during the year."
    )
    pdf.heading("Quarterly Revenue by Region")
    pdf.font(9)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(0, 5, "Net sales, EUR million, fiscal year 2023", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(2)

    totals = [round(sum(v[q] for _, v in REVENUE), 1) for q in range(4)]
    rows = [("Region", "Q1", "Q2", "Q3", "Q4", "Full year")]
    for name, vals in REVENUE:
        rows.append((name, *(f"{x:.1f}" for x in vals), f"{sum(vals):.1f}"))
    rows.append(("Total", *(f"{x:.1f}" for x in totals), f"{sum(totals):.1f}"))

    pdf.font(9.5)
    pdf.set_draw_color(120, 140, 160)
    pdf.set_line_width(0.2)
    head = FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=(20, 60, 90))
    with pdf.table(
        col_widths=(52, 20, 20, 20, 20, 26),
        width=158,
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=head,
        line_height=6.5,
        borders_layout="HORIZONTAL_LINES",
        padding=(0.5, 2),
    ) as table:
        for i, row in enumerate(rows):
            if i == 0:
                style = None  # headings_style applies
            elif i == len(rows) - 1:
                style = FontFace(emphasis="BOLD", fill_color=(215, 226, 236))
            elif i % 2 == 0:
                style = FontFace(fill_color=(238, 243, 247))
            else:  # explicit white: otherwise fpdf2 reuses the heading fill colour
                style = FontFace(fill_color=(255, 255, 255))
            r = table.row(style=style)
            for value in row:
                r.cell(value)
    pdf.ln(10)

    pdf.heading("Regional Performance")
    pdf.para(
        "Central and Eastern Europe was our fastest-growing region, with revenue up 17 "
        "percent on the back of new distribution agreements in Poland and Romania. North "
        "America softened in the third quarter as housing starts slowed, before "
        "recovering strongly at year end. The fourth quarter was the strongest period in "
        "every region, reflecting seasonal restocking by distributors ahead of the spring "
        "building season."
    )
    _report_footer(pdf, 2)

    # ---- page 3 -----------------------------------------------------------
    pdf.add_page()
    pdf.set_y(20)
    pdf.heading("Principal Risks", size=15, gap_after=5)
    pdf.heading("Raw material supply chain", size=11.5)
    pdf.para(
        "Our most significant supply-chain exposure is high-purity kaolin and zirconium "
        "silicate, roughly 40 percent of which comes from two quarries in Cornwall and "
        "Western Australia. A disruption at either site could stop our glazing lines "
        "within six weeks. To reduce this risk we raised safety stocks to ten weeks of "
        "consumption and qualified an alternative supplier in Minas Gerais, Brazil."
    )
    pdf.heading("Currency exposure", size=11.5)
    pdf.para(
        "About a third of our sales are invoiced in US dollars and Swedish krona, while "
        "most of our costs are incurred in euros. We hedge 70 percent of forecast net "
        "currency flows for the next twelve months with forward contracts. Even so, a 10 "
        "percent weakening of the dollar against the euro would reduce operating profit "
        "by approximately EUR 4 million."
    )
    pdf.heading("Energy prices", size=11.5)
    pdf.para(
        "Firing ceramics is energy intensive, and natural gas still accounts for 14 "
        "percent of our cost of goods sold. Fixed-price contracts cover 80 percent of "
        "expected gas demand for 2024, and our solar and wind agreements limit the "
        "effect of swings in wholesale electricity prices."
    )
    pdf.heading("Outlook for 2024", size=15, gap_after=5)
    pdf.para(
        "For 2024 we expect net sales growth of 5 to 7 percent at constant exchange rates "
        "and an operating margin of at least 12 percent. We plan capital expenditure of "
        "EUR 38 million, most of it for an all-electric roller kiln in Porto that will be "
        "the first of its size in the European tile industry and is scheduled to start "
        "production in the first quarter of 2025."
    )
    pdf.para(
        "The Board thanks our employees, customers and shareholders for their trust, and "
        "invites shareholders to the Annual General Meeting on 16 May 2024 in Aveiro."
    )
    _report_footer(pdf, 3)
    _save(pdf, path)


# --------------------------------------------------------------------------- #
# 2. invoice.pdf
# --------------------------------------------------------------------------- #

INVOICE_ITEMS = [
    ("Letterpress business cards, box of 500", 4, 68.00),
    ("Risograph event posters, A2, 3 colours", 150, 3.40),
    ("Design and typesetting (hours)", 12, 75.00),
    ("Recycled kraft envelopes, C5", 300, 0.45),
    ("Courier delivery, Hamburg city area", 1, 24.50),
]
VAT_RATE = 0.19


def _eur(x: float) -> str:
    return f"{x:,.2f}"


def make_invoice(path: str) -> None:
    pdf = SamplePDF(orientation="P", unit="mm", format="A4",
                    title="Invoice INV-2024-0417 - Lindqvist & Baptiste Print Studio")
    pdf.set_margins(20, 18, 20)
    pdf.add_page()

    # seller block (top left)
    pdf.set_y(20)
    pdf.font(16, bold=True)
    pdf.set_text_color(150, 40, 40)
    pdf.cell(100, 8, "Lindqvist & Baptiste", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.font(9.5)
    pdf.multi_cell(100, 4.8,
                   "Print Studio GmbH\nSpeicherstadt 7, Block C\n20457 Hamburg, Germany\n"
                   "VAT ID: DE 318 442 907\nhello@lindqvist-baptiste.example",
                   new_x="LMARGIN", new_y="NEXT")

    # invoice title block (top right)
    pdf.set_xy(125, 20)
    pdf.font(22, bold=True)
    pdf.cell(65, 10, "INVOICE", align="R")
    pdf.set_xy(125, 34)
    pdf.font(9.5)
    pdf.multi_cell(65, 5.2,
                   "Invoice number: INV-2024-0417\nInvoice date: 12 March 2024\n"
                   "Due date: 11 April 2024\nCustomer no.: C-0883",
                   align="R")

    # buyer block
    pdf.set_xy(20, 70)
    pdf.font(9, bold=True)
    pdf.set_text_color(110, 110, 110)
    pdf.cell(0, 5, "BILL TO", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.font(10.5, bold=True)
    pdf.cell(0, 6, "Elbe Jazz Collective e.V.", new_x="LMARGIN", new_y="NEXT")
    pdf.font(9.5)
    pdf.multi_cell(100, 4.8,
                   "Attn: Marta Sorensen, Treasurer\nHafenstrasse 112\n22767 Hamburg, Germany",
                   new_x="LMARGIN", new_y="NEXT")

    # line items
    pdf.set_y(108)
    rows = [("Description", "Qty", "Unit price (EUR)", "Amount (EUR)")]
    subtotal = 0.0
    for desc, qty, price in INVOICE_ITEMS:
        amount = round(qty * price, 2)
        subtotal += amount
        rows.append((desc, str(qty), _eur(price), _eur(amount)))
    subtotal = round(subtotal, 2)
    vat = round(subtotal * VAT_RATE + 1e-9, 2)
    total = round(subtotal + vat, 2)

    pdf.font(9.5)
    head = FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=(150, 40, 40))
    with pdf.table(
        col_widths=(84, 14, 38, 34),
        width=170,
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        headings_style=head,
        line_height=6.5,
        borders_layout="HORIZONTAL_LINES",
        padding=(0.8, 2),
    ) as table:
        for row in rows:
            r = table.row()
            for value in row:
                r.cell(value)

    # totals block (right aligned)
    pdf.ln(6)
    y = pdf.get_y()
    for label, value, bold in (("Subtotal", _eur(subtotal), False),
                               (f"VAT {int(VAT_RATE * 100)}%", _eur(vat), False),
                               ("Total due (EUR)", _eur(total), True)):
        pdf.set_xy(110, y)
        pdf.font(10.5 if bold else 9.5, bold=bold)
        pdf.cell(46, 6.5, label, align="R")
        pdf.cell(34, 6.5, value, align="R")
        y += 7
    pdf.set_draw_color(150, 40, 40)
    pdf.set_line_width(0.4)
    pdf.line(130, y - 7.5, 190, y - 7.5)

    # payment terms paragraph
    pdf.set_xy(20, y + 14)
    pdf.font(11, bold=True)
    pdf.cell(0, 6, "Payment terms", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.font(9.5)
    pdf.multi_cell(
        170, 5,
        "Payment is due within 30 days of the invoice date by bank transfer to IBAN "
        "DE44 5001 0517 5407 3249 31 (BIC INGDDEFFXXX, account holder Lindqvist & "
        "Baptiste Print Studio GmbH), quoting the invoice number as the payment "
        "reference. Late payments incur interest of 1.5% per month on the outstanding "
        "balance, plus a flat reminder fee of EUR 40.",
        align="J", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.multi_cell(
        170, 5,
        "Printed goods remain our property until this invoice has been paid in full. "
        "Complaints about print quality must be reported in writing within 8 days of "
        "delivery. Thank you for choosing a carbon-neutral print shop - all paper on "
        "this order is FSC certified.",
        align="J", new_x="LMARGIN", new_y="NEXT")

    # footer
    pdf.set_y(-22)
    pdf.set_draw_color(200, 200, 200)
    pdf.set_line_width(0.2)
    pdf.line(20, pdf.get_y(), 190, pdf.get_y())
    pdf.ln(2)
    pdf.font(7.5)
    pdf.set_text_color(120, 120, 120)
    pdf.multi_cell(170, 4,
                   "Lindqvist & Baptiste Print Studio GmbH - Managing directors: Ines Baptiste, "
                   "Jonas Lindqvist - Registered at Amtsgericht Hamburg HRB 170233",
                   align="C")
    _save(pdf, path)


# --------------------------------------------------------------------------- #
# 3. slide.pdf
# --------------------------------------------------------------------------- #


def make_slide(path: str) -> None:
    w, h = 338.67, 190.5  # 13.333 x 7.5 in (16:9)
    pdf = SamplePDF(orientation="L", unit="mm", format=(h, w),
                    title="Project Heron - Data Warehouse Migration Plan")
    pdf.set_margins(0, 0, 0)
    pdf.add_page()

    # background + header band
    pdf.set_fill_color(248, 249, 252)
    pdf.rect(0, 0, w, h, style="F")
    pdf.set_fill_color(28, 45, 84)
    pdf.rect(0, 0, w, 42, style="F")
    pdf.set_fill_color(242, 163, 43)
    pdf.rect(0, 42, w, 2.5, style="F")

    pdf.set_xy(20, 10)
    pdf.font(30, bold=True)
    pdf.set_text_color(255, 255, 255)
    pdf.cell(0, 14, "Project Heron: Warehouse Migration Plan")
    pdf.set_xy(20, 27)
    pdf.font(14)
    pdf.set_text_color(200, 210, 230)
    pdf.cell(0, 8, "Moving the analytics stack off the on-premise cluster in 2024")

    # bullets
    bullets = [
        "February: inventory all 214 nightly batch jobs and freeze schema changes "
        "on the legacy cluster.",
        "April: run the old and new warehouses side by side for six weeks and compare "
        "every report row by row.",
        "June: switch the finance dashboards to the cloud warehouse and retire the "
        "on-premise cluster, saving about EUR 320,000 a year in licences.",
        "Rollback plan: keep the old cluster read-only until the end of September.",
    ]
    pdf.set_text_color(30, 30, 30)
    y = 60
    for text in bullets:
        pdf.set_fill_color(242, 163, 43)
        pdf.ellipse(22, y + 1.8, 3.6, 3.6, style="F")
        pdf.set_xy(32, y)
        pdf.font(16)
        pdf.multi_cell(160, 7.0, text, align="L", new_x="LMARGIN", new_y="NEXT")
        y = pdf.get_y() + 11

    # simple bar chart: jobs migrated per month
    cx, cy, cw, ch = 212, 62, 110, 96  # chart frame
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(210, 214, 222)
    pdf.set_line_width(0.3)
    pdf.rect(cx, cy - 10, cw, ch + 22, style="DF")
    pdf.set_xy(cx, cy - 7)
    pdf.font(12, bold=True)
    pdf.set_text_color(28, 45, 84)
    pdf.cell(cw, 6, "Batch jobs migrated per month", align="C")

    months = [("Feb", 12), ("Mar", 38), ("Apr", 71), ("May", 54), ("Jun", 39)]
    base = cy + ch - 6
    max_v = 80
    bar_w, gap = 13, 6
    x = cx + 10.5
    pdf.set_draw_color(120, 120, 120)
    pdf.line(cx + 6, base, cx + cw - 6, base)
    for i, (label, v) in enumerate(months):
        bh = (ch - 22) * v / max_v
        if i == 2:
            pdf.set_fill_color(242, 163, 43)
        else:
            pdf.set_fill_color(60, 100, 170)
        pdf.rect(x, base - bh, bar_w, bh, style="F")
        pdf.font(10)
        pdf.set_text_color(50, 50, 50)
        pdf.set_xy(x - 3, base - bh - 6)
        pdf.cell(bar_w + 6, 5, str(v), align="C")
        pdf.set_xy(x - 3, base + 1.5)
        pdf.cell(bar_w + 6, 5, label, align="C")
        x += bar_w + gap

    # footer
    pdf.set_xy(20, h - 12)
    pdf.font(9)
    pdf.set_text_color(130, 130, 130)
    pdf.cell(0, 5, "Internal - Data Platform Team - slide 4 of 12")
    _save(pdf, path)


# --------------------------------------------------------------------------- #
# Raster helpers (scanned documents)
# --------------------------------------------------------------------------- #


def _pil_font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    path = FONT_BOLD if bold else FONT_REGULAR
    try:
        return ImageFont.truetype(path, size)
    except OSError:
        return ImageFont.load_default(size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, max_w: int) -> list[str]:
    lines, cur = [], ""
    for word in text.split():
        trial = f"{cur} {word}".strip()
        if draw.textlength(trial, font=font) <= max_w or not cur:
            cur = trial
        else:
            lines.append(cur)
            cur = word
    if cur:
        lines.append(cur)
    return lines


def _scan_effect(img: Image.Image, seed: int, angle: float, paper: float = 232.0) -> Image.Image:
    """Grey paper, a faint shading gradient, sparse speckle noise, dust and a tilt.

    Noise is kept sparse and the result posterised to a few grey levels so the
    PNG stays small while still looking like a scanner output.
    """
    rng = np.random.default_rng(seed)
    img = img.convert("L").rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=255)
    a = np.asarray(img, dtype=np.float32) / 255.0  # 1 = paper, 0 = ink
    hh, ww = a.shape
    # flat grey paper with a narrow scanner-lid shadow along the left edge
    xs = np.linspace(0.0, 1.0, ww, dtype=np.float32)[None, :]
    shade = paper - 24.0 * np.exp(-xs * 60.0) + np.zeros((hh, 1), dtype=np.float32)
    ink = 38.0
    out = ink + (shade - ink) * a
    # sparse speckle noise on ~3% of pixels
    mask = rng.random(a.shape) < 0.03
    out = out + mask * rng.normal(0.0, 10.0, a.shape).astype(np.float32)
    # a few dust specks, kept away from the ink so OCR output stays clean
    placed = attempts = 0
    while placed < 60 and attempts < 20000:
        attempts += 1
        y, x = int(rng.integers(6, hh - 10)), int(rng.integers(6, ww - 10))
        s = int(rng.integers(1, 4))
        if a[max(0, y - 40):y + s + 40, max(0, x - 40):x + s + 40].min() < 0.98:
            continue
        out[y:y + s, x:x + s] = rng.uniform(60, 150)
        placed += 1
    out = np.clip(out, 0, 255)
    out = (np.round(out / 8.0) * 8.0).clip(0, 255).astype(np.uint8)  # posterise
    return Image.fromarray(out, mode="L")


# --------------------------------------------------------------------------- #
# 4. scanned-letter.png
# --------------------------------------------------------------------------- #


def make_scanned_letter(path: str) -> None:
    W, H = 1240, 1754  # A4 at 150 dpi
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    left, right = 130, W - 130
    width = right - left

    # letterhead
    f_head = _pil_font(44, bold=True)
    f_small = _pil_font(24)
    f_body = _pil_font(30)
    f_bold = _pil_font(30, bold=True)
    d.text((left, 110), "Maplestone Property Management", font=f_head, fill=0)
    d.text((left, 172), "18 Harrow Lane, Leeds LS6 2QT  |  Telephone 0113 496 0721", font=f_small, fill=40)
    d.line((left, 215, right, 215), fill=0, width=3)

    y = 265
    d.text((left, y), "To all residents of Alder Court, Flats 1 to 24", font=f_body, fill=0)
    date = "4 November 2024"
    d.text((right - d.textlength(date, font=f_body), y), date, font=f_body, fill=0)
    y += 80
    d.text((left, y), "Re: Boiler repair and water shut-off on 12 November", font=f_bold, fill=0)
    y += 70
    d.text((left, y), "Dear Residents,", font=f_body, fill=0)
    y += 64

    paragraphs = [
        "We are writing to let you know that the central boiler serving Alder Court "
        "failed its annual safety inspection last week. Engineers from Northgate Heating "
        "will replace the faulty burner and the circulation pump on Tuesday 12 November, "
        "between 8 am and 4 pm.",
        "During this work the water supply to all flats will be turned off from 9 am "
        "until 1 pm, and the radiators will stay cold for the whole day. We suggest you "
        "fill a kettle and a few bottles the evening before. Electric heaters can be "
        "borrowed free of charge from the site office on the ground floor.",
        "If you have a disability, a newborn baby or a medical condition that makes a "
        "cold flat unsafe, please telephone us before Friday so that we can arrange "
        "extra help. We are sorry for the inconvenience and thank you for your patience.",
    ]
    line_h = 44
    for p in paragraphs:
        for line in _wrap(d, p, f_body, width):
            d.text((left, y), line, font=f_body, fill=0)
            y += line_h
        y += 30

    y += 20
    d.text((left, y), "Yours sincerely,", font=f_body, fill=0)
    # a hand-drawn looking signature stroke
    pts = [(left + 10 + i * 6, y + 95 + int(14 * np.sin(i / 3.0))) for i in range(40)]
    d.line(pts, fill=30, width=3)
    y += 140
    d.text((left, y), "Priya Okafor", font=f_body, fill=0)
    d.text((left, y + 42), "Building Manager", font=f_body, fill=0)

    out = _scan_effect(img, seed=20241104, angle=0.5)
    out.save(path, format="PNG", optimize=True)


# --------------------------------------------------------------------------- #
# 5. scanned-receipt.pdf (image only, no text layer)
# --------------------------------------------------------------------------- #

RECEIPT_ITEMS = [
    ("Wood screws 4x40 (200)", 1, 6.95),
    ("Wall plugs 8 mm (50)", 2, 3.49),
    ("Masking tape 38 mm", 3, 2.79),
    ("Sanding sheets P120 (10)", 1, 5.60),
    ("Cordless drill battery 18V", 1, 39.90),
]


def make_scanned_receipt(path: str) -> None:
    W, H = 560, 1180  # about 80 mm wide thermal roll at 180 dpi
    img = Image.new("L", (W, H), 255)
    d = ImageDraw.Draw(img)
    f_big = _pil_font(34, bold=True)
    f = _pil_font(24)
    fb = _pil_font(24, bold=True)

    def center(text, y, font):
        d.text(((W - d.textlength(text, font=font)) / 2, y), text, font=font, fill=0)

    def left_right(lt, rt, y, font):
        d.text((30, y), lt, font=font, fill=0)
        d.text((W - 30 - d.textlength(rt, font=font), y), rt, font=font, fill=0)

    center("OAKRIDGE HARDWARE", 40, f_big)
    center("Canal Street 41, Utrecht", 90, f)
    center("Tel 030 555 0192", 122, f)
    y = 180
    left_right("Date 09-08-2024", "Time 17:42", y, f)
    y += 32
    left_right("Receipt 55-20931", "Till 3", y, f)
    y += 44
    d.line((30, y, W - 30, y), fill=0, width=2)
    y += 18
    total = 0.0
    for name, qty, price in RECEIPT_ITEMS:
        amount = round(qty * price, 2)
        total += amount
        d.text((30, y), name, font=f, fill=0)
        y += 30
        left_right(f"  {qty} x {price:.2f}", f"{amount:.2f}", y, f)
        y += 40
    total = round(total, 2)
    d.line((30, y, W - 30, y), fill=0, width=2)
    y += 18
    left_right("TOTAL EUR", f"{total:.2f}", y, fb)
    y += 36
    left_right("Paid by debit card", f"{total:.2f}", y, f)
    y += 32
    vat = round(total - total / 1.21, 2)
    left_right("incl. VAT 21%", f"{vat:.2f}", y, f)
    y += 60
    center("Returns accepted within 14 days", y, f)
    y += 32
    center("with this receipt.", y, f)
    y += 44
    center("Thank you for shopping with us!", y, fb)

    img = img.crop((0, 0, W, min(H, y + 80)))
    out = _scan_effect(img, seed=20240809, angle=-0.7, paper=236.0)

    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    buf.seek(0)

    w_mm = 80.0
    h_mm = w_mm * out.height / out.width
    pdf = SamplePDF(orientation="P", unit="mm", format="A4", title="Scanned receipt")
    pdf.add_page()
    pdf.set_fill_color(250, 250, 250)
    pdf.image(buf, x=(210 - w_mm) / 2, y=25, w=w_mm, h=h_mm)
    _save(pdf, path)


# --------------------------------------------------------------------------- #


def main(argv: list[str]) -> int:
    out_dir = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out_dir, exist_ok=True)
    jobs = [
        ("annual-report.pdf", make_annual_report),
        ("invoice.pdf", make_invoice),
        ("slide.pdf", make_slide),
        ("scanned-letter.png", make_scanned_letter),
        ("scanned-receipt.pdf", make_scanned_receipt),
    ]
    for name, fn in jobs:
        target = os.path.join(out_dir, name)
        fn(target)
        print(f"wrote {target} ({os.path.getsize(target) / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

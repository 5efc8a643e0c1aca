#!/usr/bin/env python3
"""Generate the fictional sample documents used by the quickstart and the e2e tests.

Usage:  python samples/make_samples.py [output_dir]   (default: the folder of this script)

Only needs fpdf2, pillow and numpy.  The output is deterministic: fixed random
seeds, a fixed PDF creation date, and no timestamps in the PNG files, so running
the script twice produces byte-identical files.

All companies, people, addresses, account numbers and figures are invented.
"""

from __future__ import annotations

import os
import sys

from fpdf.fonts import FontFace

from make_samples_common import SamplePDF, _save
from make_samples_office import make_invoice, make_slide
from make_samples_scans import make_scanned_letter, make_scanned_receipt

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

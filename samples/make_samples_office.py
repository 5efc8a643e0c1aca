"""The invoice and the slide samples (PDFs with a text layer)."""

from __future__ import annotations

from fpdf.fonts import FontFace

from make_samples_common import SamplePDF, _save


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

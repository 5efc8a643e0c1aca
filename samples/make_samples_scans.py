"""The two "scanned" samples: pages with no text layer, for the OCR path.

A letter as a PNG and a receipt as an image-only PDF, rendered with PIL and then given a
scanner's grey paper, noise, dust and a slight tilt. Used by make_samples.py.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from make_samples_common import FONT_BOLD, FONT_REGULAR, SamplePDF, _save


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

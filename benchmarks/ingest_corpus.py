"""The corpora of ``benchmarks/ingest.py``, made from real PDFs that Debian ships.

    python benchmarks/ingest_corpus.py [--workdir DIR]   # or let ingest.py build them

Into ``DIR/corpus`` (made once, reused while the sources are the same):

* ``text/``: the first ``--text-pages`` body pages of each source PDF, as PDFs with their
  text layer (``pdfseparate`` + ``pdfunite``);
* ``scans/``: other body pages rendered at 150 dpi, degraded like a flatbed scan (grey,
  a 0.4 degree tilt, sensor noise, a slight blur) and written back as image-only PDFs by
  PIL's PDF writer (JPEG inside, no text layer: every page needs OCR);
* ``pngs/``: more pages degraded the same way, one PNG each;
* ``big.pdf``: the three source PDFs end to end (``pdfunite``), 516 pages with the
  default sources, for the peak-memory rows.

Needs poppler-utils (pdfseparate, pdfunite, pdftoppm) and the source PDFs:
``apt-get install bash-doc glpk-doc debmake-doc``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SOURCES = (
    Path("/usr/share/doc/bash/bashref.pdf"),
    Path("/usr/share/doc/glpk-doc/glpk.pdf"),
    Path("/usr/share/doc/debmake-doc/debmake-doc.en.pdf"),
)
FIRST_BODY_PAGE = 10  # past title pages and tables of contents
SCAN_DPI = 150


@dataclass(frozen=True)
class Corpus:
    text: list[Path]
    scans: list[Path]
    pngs: list[Path]
    big: Path

    def files(self, name: str) -> list[Path]:
        return {"text": self.text, "scans": self.scans, "pngs": self.pngs}[name]


def _degrade(page: Image.Image, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    grey = page.convert("L").rotate(0.4, resample=Image.BILINEAR, fillcolor=255)
    pixels = np.asarray(grey, np.float32) * 0.92 + 12  # grey paper, less contrast
    pixels += rng.normal(0, 9, pixels.shape)
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return noisy.filter(ImageFilter.GaussianBlur(0.6))


def _run(*argv: str) -> None:
    # pdfunite warns about every shared font dictionary; only failure matters
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def build(workdir: Path, text_pages: int = 8, scan_pages: int = 3,
          png_pages: int = 2) -> Corpus:
    """Make (or reuse) the corpora under ``workdir / "corpus"``."""
    from retriever.ingest.pdf import render_pdf_pages

    sources = [s for s in SOURCES if s.exists()]
    if not sources:
        sys.exit("no source PDFs: apt-get install bash-doc glpk-doc debmake-doc")
    root = workdir / "corpus"
    stamp = root / "stamp.json"
    wanted = {"sources": [str(s) for s in sources], "text": text_pages, "scans": scan_pages,
              "pngs": png_pages}
    corpus = Corpus(
        text=[root / "text" / f"{s.stem}.pdf" for s in sources],
        scans=[root / "scans" / f"{s.stem}-scan.pdf" for s in sources],
        pngs=[root / "pngs" / f"{s.stem}-{i}.png" for s in sources for i in range(png_pages)],
        big=root / "big.pdf",
    )
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return corpus
    for folder in ("text", "scans", "pngs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    first = FIRST_BODY_PAGE
    for number, source in enumerate(sources):
        with tempfile.TemporaryDirectory() as tmp:
            last = first + text_pages - 1
            _run("pdfseparate", "-f", str(first), "-l", str(last), str(source),
                 f"{tmp}/p-%03d.pdf")
            parts = sorted(str(p) for p in Path(tmp).glob("p-*.pdf"))
            _run("pdfunite", *parts, str(corpus.text[number]))
        start = first + text_pages
        scans = [_degrade(image, seed=start + i) for i, image in enumerate(
            render_pdf_pages(source, start, start + scan_pages - 1, SCAN_DPI))]
        scans[0].save(corpus.scans[number], save_all=True, append_images=scans[1:],
                      resolution=float(SCAN_DPI))
        start += scan_pages
        for i, image in enumerate(render_pdf_pages(source, start, start + png_pages - 1,
                                                   SCAN_DPI)):
            _degrade(image, seed=start + i).save(root / "pngs" / f"{source.stem}-{i}.png")
    _run("pdfunite", *(str(s) for s in sources), str(corpus.big))
    stamp.write_text(json.dumps(wanted))
    return corpus


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/retriever-ingest-bench"))
    made = build(ap.parse_args().workdir)
    for name in ("text", "scans", "pngs"):
        print(name, *made.files(name))
    print("big", made.big)

"""PDF rasterization speed: pdf2image per page, per range, pdftoppm direct, and pypdfium2.

    python benchmarks/rasterize.py                  # 24 pages of each PDF, 150 dpi
    python benchmarks/rasterize.py --pages 8        # a quick look
    python benchmarks/rasterize.py --json           # one JSON object per row
    python benchmarks/rasterize.py --pdf FILE.pdf   # your own PDFs (repeatable)

Setup: poppler-utils (as for the project); ``pip install pypdfium2`` for its rows (they
are left out when it is not installed; it is not a project dependency). The default
corpus is three real PDFs Debian ships (``/usr/share/doc``: the bash reference manual, the
GLPK manual and the debmake guide; whatever of them is installed).

Rows, each rendering the same first ``--pages`` pages of each PDF to RGB PIL images at
``--dpi``, one at a time in this process, every engine single-threaded:

* ``pdf2image/page``: ``render_pdf_page`` as ``Document.pages()`` uses it, one
  ``convert_from_path`` per page: pdf2image runs ``pdfinfo``, ``pdftoppm -v`` and
  ``pdftoppm`` for each call;
* ``pdf2image/range N``: one ``convert_from_path(first_page, last_page)`` per N pages;
* ``pdftoppm/range N``: ``render_pdf_pages``, one ``pdftoppm -f -l`` per N pages, images
  read from its pipe as they come (what the page producer uses);
* ``pypdfium2/range N``: the document opened once per N pages (as a worker task would),
  each page rendered with ``page.render(scale=dpi/72).to_pil()``.

Columns: pages/s (wall, one core), CPU ms per page (this process and its children: poppler
runs in a child), and for pypdfium2 whether its pixel sizes equal poppler's
(``ceil(points * dpi / 72)``) and the mean absolute pixel difference from poppler.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_PDFS = (
    "/usr/share/doc/bash/bashref.pdf",
    "/usr/share/doc/glpk-doc/glpk.pdf",
    "/usr/share/doc/debmake-doc/debmake-doc.en.pdf",
)


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdf", action="append", type=Path, default=None)
    ap.add_argument("--pages", type=int, default=24, help="first N pages of each PDF")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--ranges", default="4,8", help="pages per range, comma-separated")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _chunks(count: int, size: int) -> Iterator[tuple[int, int]]:
    for first in range(1, count + 1, size):
        yield first, min(count, first + size - 1)


def _pdf2image_page(path: Path, count: int, dpi: int) -> Iterator:
    from retriever.ingest.pdf import render_pdf_page

    for number in range(1, count + 1):
        yield render_pdf_page(path, number, dpi)


def _pdf2image_range(size: int) -> Callable[[Path, int, int], Iterator]:
    def run(path: Path, count: int, dpi: int) -> Iterator:
        from pdf2image import convert_from_path

        for first, last in _chunks(count, size):
            for image in convert_from_path(str(path), dpi=dpi, first_page=first,
                                           last_page=last, use_cropbox=True, thread_count=1):
                yield image.convert("RGB")
    return run


def _pdftoppm_range(size: int) -> Callable[[Path, int, int], Iterator]:
    def run(path: Path, count: int, dpi: int) -> Iterator:
        from retriever.ingest.pdf import render_pdf_pages

        for first, last in _chunks(count, size):
            yield from render_pdf_pages(path, first, last, dpi)
    return run


def _pdfium_range(size: int) -> Callable[[Path, int, int], Iterator]:
    def run(path: Path, count: int, dpi: int) -> Iterator:
        import pypdfium2 as pdfium

        for first, last in _chunks(count, size):
            document = pdfium.PdfDocument(str(path))
            try:
                for index in range(first - 1, last):
                    page = document[index]
                    yield page.render(scale=dpi / 72).to_pil().convert("RGB")
                    page.close()
            finally:
                document.close()
    return run


def _measure(name: str, render: Callable[[Path, int, int], Iterator], pdfs: list[Path],
             pages: int, dpi: int, reference: dict | None) -> tuple[dict, dict]:
    import numpy as np

    sizes: dict[tuple[str, int], tuple[int, int]] = {}
    diffs: list[float] = []
    total = 0
    cpu, wall = _cpu(), time.perf_counter()
    for pdf in pdfs:
        for number, image in enumerate(render(pdf, pages, dpi), start=1):
            sizes[(str(pdf), number)] = image.size
            if reference is not None:
                ref = reference[(str(pdf), number)]
                if ref.size == image.size:
                    a, b = np.asarray(ref, np.int16), np.asarray(image, np.int16)
                    diffs.append(float(np.abs(a - b).mean()))
            total += 1
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    row = {"engine": name, "pages": total, "dpi": dpi, "pages_per_s": round(total / wall, 2),
           "cpu_ms_per_page": round(1000 * cpu / total, 1)}
    return row, sizes | {"diffs": diffs}  # type: ignore[operator]


def main() -> None:
    args = _parse()
    pdfs = args.pdf or [Path(p) for p in DEFAULT_PDFS if Path(p).exists()]
    if not pdfs:
        sys.exit("no PDFs: pass --pdf FILE.pdf")
    from retriever.ingest.pdf import read_pdf_info, render_size

    pages = min([args.pages] + [read_pdf_info(p).page_count for p in pdfs])
    expected = {(str(p), n): render_size(s, args.dpi) for p in pdfs
                for n, s in enumerate(read_pdf_info(p).pages[:pages], start=1)}
    ranges = [int(r) for r in args.ranges.split(",")]
    engines: list[tuple[str, Callable]] = [("pdf2image/page", _pdf2image_page)]
    engines += [(f"pdf2image/range {n}", _pdf2image_range(n)) for n in ranges]
    engines += [(f"pdftoppm/range {n}", _pdftoppm_range(n)) for n in ranges]
    try:
        import pypdfium2  # noqa: F401

        engines += [(f"pypdfium2/range {n}", _pdfium_range(n)) for n in ranges]
    except ImportError:
        print("pypdfium2 not installed: its rows are left out", file=sys.stderr)

    # poppler's own pixels, kept once, to compare pypdfium2's against
    from retriever.ingest.pdf import render_pdf_pages

    reference = {(str(p), n): image for p in pdfs
                 for n, image in enumerate(render_pdf_pages(p, 1, pages, args.dpi), start=1)}
    rows = []
    for name, render in engines:
        row, seen = _measure(name, render, pdfs, pages, args.dpi,
                             reference if name.startswith("pypdfium2") else None)
        diffs = seen.pop("diffs")
        row["sizes_equal_poppler"] = all(seen[k] == expected[k] for k in expected)
        if diffs:
            row["mean_abs_pixel_diff"] = round(sum(diffs) / len(diffs), 2)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
    if not args.json:
        print(f"{len(pdfs)} PDFs x {pages} pages at {args.dpi} dpi, one core:")
        print(f"{'engine':<20} {'pages/s':>8} {'CPU ms/page':>12} {'sizes = poppler':>16}")
        for row in rows:
            extra = f"  mean |diff| {row['mean_abs_pixel_diff']}" \
                if "mean_abs_pixel_diff" in row else ""
            print(f"{row['engine']:<20} {row['pages_per_s']:>8} {row['cpu_ms_per_page']:>12} "
                  f"{str(row['sizes_equal_poppler']):>16}{extra}")


if __name__ == "__main__":
    main()

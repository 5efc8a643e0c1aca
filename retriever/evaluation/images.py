"""Re-render PDFs as page images without a text layer, so evaluation exercises OCR.

Each page becomes one PNG (``pdftoppm -r DPI -png``); a query's truth (file, page, box)
carries over unchanged because a normalized box means the same on the rendered page.
"""

from __future__ import annotations

__all__ = ["PageImage", "render_pdf_pages"]

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..doctor import POPPLER_INSTALL
from ..errors import BadInputError, MissingDependencyError

_PAGE_SUFFIX = re.compile(r"-(\d+)\.png$")


@dataclass(frozen=True)
class PageImage:
    """A rendered page: the PNG, and the PDF page it shows."""

    path: Path
    origin: Path
    page: int  # 1-based page of ``origin``


def render_pdf_pages(pdfs: Sequence[Path], out_dir: Path, *, dpi: int = 150,
                     timeout: float = 600) -> list[PageImage]:
    """Render every page of every PDF to ``out_dir/<stem>-<n>.png``."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise MissingDependencyError("pdftoppm (poppler-utils) is not installed",
                                     hint=POPPLER_INSTALL)
    images: list[PageImage] = []
    for number, pdf in enumerate(pdfs):
        # A numbered folder per PDF: two PDFs with the same name must not collide.
        folder = out_dir / f"{number:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        prefix = folder / pdf.stem
        proc = subprocess.run([exe, "-r", str(dpi), "-png", str(pdf.resolve()), str(prefix)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              check=False)
        if proc.returncode != 0:
            detail = proc.stderr.decode("utf-8", "replace").strip()[-300:]
            raise BadInputError(str(pdf), "corrupt", f"pdftoppm failed: {detail}")
        for png in sorted(folder.glob(f"{pdf.stem}-*.png")):
            match = _PAGE_SUFFIX.search(png.name)
            if match:
                images.append(PageImage(png, pdf, int(match.group(1))))
    return images

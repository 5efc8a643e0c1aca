"""PDF pages through poppler (via pdf2image): page sizes up front, pixels one page at a time.

DPI and pixel-cap policy
------------------------
A page's rendered size is known before rendering: ``ceil(points * dpi / 72)`` per side,
from the crop box ``pdfinfo`` reports (the box viewers show, and the one we ask
``pdftoppm`` to render with ``-cropbox``), with ``/Rotate`` 90/270 swapping the sides.
When a page at the requested DPI would exceed ``max_pixels`` we *lower the DPI for that
page* to the highest value that fits, and record it in ``Page.dpi``: a poster-sized page
still gets indexed, at the resolution the cap allows. Only when even ``MIN_DPI`` (36, half
of the PDF's own 72 units per inch, where text is no longer legible) does not fit is the
file refused as "too-large". A caller that asks for less than 36 dpi keeps its own value as
the floor.

Rendering one page per poppler call keeps memory bounded by one page, whatever the
document's length. ``render_pdf_pages`` draws a run of pages with one ``pdftoppm`` process
instead (pdf2image would also run ``pdfinfo`` and ``pdftoppm -v`` around every call) and
hands them over one at a time as they come out of the pipe, so memory stays bounded by a
page there too.
"""

from __future__ import annotations

__all__ = [
    "MIN_DPI",
    "POPPLER_TIMEOUT_S",
    "PdfPageSize",
    "PdfInfo",
    "read_pdf_info",
    "render_size",
    "fit_dpi",
    "render_pdf_page",
    "render_pdf_pages",
]

import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from pathlib import Path

from pdf2image import convert_from_path, pdfinfo_from_path
from pdf2image.exceptions import (
    PDFInfoNotInstalledError,
    PDFPageCountError,
    PDFPopplerTimeoutError,
    PopplerNotInstalledError,
)
from PIL import Image

from ..errors import BadInputError, MissingDependencyError, RetrieverError

MIN_DPI = 36
# A hostile or pathological PDF can keep poppler busy for ever; the batch must go on.
POPPLER_TIMEOUT_S = 300

_POPPLER_HINT = (
    "install poppler: `apt-get install poppler-utils` (Debian/Ubuntu), "
    "`brew install poppler` (macOS), or `conda install -c conda-forge poppler`"
)
_PAGE_SIZE_KEY = re.compile(r"^Page\s+(\d+)\s+size$")
_PAGE_ROT_KEY = re.compile(r"^Page\s+(\d+)\s+rot$")
_SIZE_VALUE = re.compile(r"^([0-9.]+)\s*x\s*([0-9.]+)\s*pts")
# A page count above this is not a real document; it would only make pdfinfo list forever.
_MAX_PAGES = 1_000_000


@dataclass(frozen=True)
class PdfPageSize:
    """A page's displayed size in PDF points (1/72 inch), rotation already applied."""

    width_pt: float
    height_pt: float


@dataclass(frozen=True)
class PdfInfo:
    page_count: int
    pages: tuple[PdfPageSize, ...]  # index 0 is page 1
    encrypted: bool  # encrypted but openable without a password (owner password only)


def _tool_arg(path: Path) -> str:
    """The path as poppler gets it: absolute, so a file named ``-f.pdf`` or ``-v`` can never
    be read as an option (pdf2image puts it on the command line as given)."""
    return os.path.abspath(path)


def _missing_poppler(exc: Exception) -> MissingDependencyError:
    return MissingDependencyError(
        f"poppler (pdfinfo/pdftoppm) is needed to read PDFs and was not found: {exc}",
        hint=_POPPLER_HINT,
    )


def _classify_poppler_error(path: Path, stderr: str) -> BadInputError:
    """Map poppler's stderr to one of our reasons, with its most telling line as detail."""
    text = stderr.strip()
    lowered = text.lower()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # poppler's last error line is the conclusion ("Couldn't read xref table"); the first is
    # often a warning it went on from.
    errors = [line for line in lines if "error" in line.lower()]
    detail = (errors or lines or ["poppler could not read it"])[-1]
    if "password" in lowered:
        # "Command Line Error: Incorrect password": a user password is required to open it.
        return BadInputError(
            str(path), "encrypted", "password-protected",
            hint="decrypt it first (e.g. `qpdf --decrypt --password=... in.pdf out.pdf`)",
        )
    if "invalid page count 0" in lowered or "document stream is empty" in lowered:
        return BadInputError(str(path), "empty", "the PDF has no pages")
    if "couldn't open file" in lowered:
        reason = "not-found" if "no such file" in lowered else "unreadable"
        return BadInputError(str(path), reason, detail)
    if "command line error" in lowered and "page range" in lowered:
        return BadInputError(str(path), "empty", "the PDF has no pages")
    if not _has_pdf_header(path):
        detail = "not a PDF file (no %PDF- header)"
    return BadInputError(str(path), "corrupt", detail)


def _has_pdf_header(path: Path) -> bool:
    """True when ``%PDF-`` appears in the first KiB (where readers accept it)."""
    try:
        with open(path, "rb") as handle:
            return b"%PDF-" in handle.read(1024)
    except OSError:
        return True  # cannot tell; keep poppler's own words


def _parse_sizes(info: dict[str, object], page_count: int, path: Path) -> tuple[PdfPageSize, ...]:
    sizes: dict[int, tuple[float, float]] = {}
    rotations: dict[int, int] = {}
    for key, value in info.items():
        if match := _PAGE_SIZE_KEY.match(key):
            dims = _SIZE_VALUE.match(str(value))
            if dims:
                sizes[int(match.group(1))] = (float(dims.group(1)), float(dims.group(2)))
        elif match := _PAGE_ROT_KEY.match(key):
            try:
                rotations[int(match.group(1))] = int(str(value).strip()) % 360
            except ValueError:
                rotations[int(match.group(1))] = 0
    pages = []
    for number in range(1, page_count + 1):
        width, height = sizes.get(number, (0.0, 0.0))
        if not (width > 0 and height > 0):
            # poppler reports 0 x 0 for a page object it cannot resolve; rendering it would
            # give a 1x1 image, so refuse the file now instead of indexing a blank page.
            raise BadInputError(str(path), "corrupt", f"page {number} has no valid size")
        if rotations.get(number, 0) in (90, 270):
            width, height = height, width
        pages.append(PdfPageSize(width, height))
    return tuple(pages)


def read_pdf_info(path: str | Path) -> PdfInfo:
    """Page count and every page's size, from one ``pdfinfo`` call (nothing rendered).

    Raises ``BadInputError`` with reason encrypted / corrupt / empty / unreadable, or
    ``MissingDependencyError`` when poppler is not installed.
    """
    path = Path(path)
    try:
        # -f 1 -l N makes pdfinfo print "Page N size" and "Page N rot" for every page;
        # pdfinfo clamps the last page to the real count.
        info = pdfinfo_from_path(
            _tool_arg(path), first_page=1, last_page=_MAX_PAGES, timeout=POPPLER_TIMEOUT_S
        )
    except (PDFInfoNotInstalledError, PopplerNotInstalledError) as exc:
        raise _missing_poppler(exc) from exc
    except PDFPageCountError as exc:
        # pdf2image puts pdfinfo's stderr after its own first line.
        raise _classify_poppler_error(path, str(exc).partition("\n")[2]) from exc
    except PDFPopplerTimeoutError as exc:
        raise BadInputError(
            str(path), "corrupt", f"pdfinfo did not finish in {POPPLER_TIMEOUT_S} s"
        ) from exc

    page_count = info.get("Pages")
    if not isinstance(page_count, int) or page_count < 0:
        raise BadInputError(str(path), "corrupt", f"unreadable page count {page_count!r}")
    if page_count == 0:
        raise BadInputError(str(path), "empty", "the PDF has no pages")
    encrypted = str(info.get("Encrypted", "no")).strip().lower().startswith("yes")
    return PdfInfo(page_count, _parse_sizes(info, page_count, path), encrypted)


def render_size(size: PdfPageSize, dpi: int) -> tuple[int, int]:
    """Pixel size poppler produces for ``size`` at ``dpi`` (may differ by 1 px, since
    pdfinfo prints sizes rounded to 2 decimals)."""
    # Multiply before dividing, as poppler does: 792 * 150 / 72 is exactly 1650, while
    # 792 * (150 / 72) rounds up to 1650.0000000000002 and would ceil to 1651.
    return (
        max(1, math.ceil(size.width_pt * dpi / 72.0)),
        max(1, math.ceil(size.height_pt * dpi / 72.0)),
    )


def fit_dpi(size: PdfPageSize, dpi: int, max_pixels: int) -> int | None:
    """The DPI to render ``size`` at: ``dpi`` if it fits ``max_pixels``, else the highest
    lower DPI that fits, or None when not even ``min(MIN_DPI, dpi)`` fits."""
    width, height = render_size(size, dpi)
    if width * height <= max_pixels:
        return dpi
    floor = min(MIN_DPI, dpi)
    # Pixels grow with dpi squared; start from the analytic answer and step down past ceil().
    candidate = int(72.0 * math.sqrt(max_pixels / (size.width_pt * size.height_pt)))
    candidate = min(candidate, dpi - 1)
    while candidate >= floor:
        width, height = render_size(size, candidate)
        if width * height <= max_pixels:
            return candidate
        candidate -= 1
    return None


def render_pdf_page(path: str | Path, page_number: int, dpi: int) -> Image.Image:
    """Rasterize one page (1-based) to an RGB image, loaded into memory.

    Raises ``BadInputError`` naming the page when poppler fails on it.
    """
    path = Path(path)
    try:
        images = convert_from_path(
            _tool_arg(path),
            dpi=dpi,
            first_page=page_number,
            last_page=page_number,
            use_cropbox=True,  # the same box pdfinfo's sizes describe
            timeout=POPPLER_TIMEOUT_S,
            thread_count=1,
        )
    except (PDFInfoNotInstalledError, PopplerNotInstalledError) as exc:
        raise _missing_poppler(exc) from exc
    except PDFPageCountError as exc:
        # pdf2image re-reads the page count first: the file changed or broke since opening.
        error = _classify_poppler_error(path, str(exc).partition("\n")[2])
        raise BadInputError(str(path), error.reason, f"page {page_number}: {error.detail}",
                            hint=error.hint) from exc
    except PDFPopplerTimeoutError as exc:
        raise BadInputError(
            str(path), "too-large",
            f"page {page_number}: rendering took longer than {POPPLER_TIMEOUT_S} s",
        ) from exc
    except OSError as exc:  # poppler wrote something PIL cannot parse as a PPM
        raise BadInputError(str(path), "corrupt", f"page {page_number}: {exc}") from exc
    if len(images) != 1:
        raise BadInputError(
            str(path), "corrupt", f"page {page_number}: poppler produced no image"
        )
    image = images[0]
    try:
        image.load()
        return image if image.mode == "RGB" else image.convert("RGB")
    except OSError as exc:
        raise BadInputError(str(path), "corrupt", f"page {page_number}: {exc}") from exc


def _read_ppm_header(stream: BinaryIO) -> tuple[bytes, int, int, int] | None:
    """``(magic, width, height, maxval)`` of the next binary PPM/PGM in ``stream``; None at
    the end of the stream. Tokens are separated by whitespace; the header ends with exactly
    one whitespace byte before the pixels (netpbm's rule)."""
    tokens: list[bytes] = []
    token = b""
    while len(tokens) < 4:
        byte = stream.read(1)
        if not byte:
            if not tokens and not token:
                return None
            raise ValueError("truncated PPM header")
        if byte.isspace():
            if token:
                tokens.append(token)
                token = b""
        elif byte == b"#" and not token:  # a comment runs to the end of the line
            while (byte := stream.read(1)) not in (b"\n", b""):
                pass
        else:
            token += byte
            if len(token) > 16:
                raise ValueError("not a PPM header")
    magic, width, height, maxval = tokens[0], int(tokens[1]), int(tokens[2]), int(tokens[3])
    if magic not in (b"P6", b"P5") or maxval != 255 or width < 1 or height < 1:
        raise ValueError(f"unexpected PPM header {b' '.join(tokens)!r}")
    return magic, width, height, maxval


def _pdftoppm() -> str:
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise MissingDependencyError("poppler's pdftoppm is needed to render PDF pages and "
                                     "was not found on PATH", hint=_POPPLER_HINT)
    return exe


def render_pdf_pages(
    path: str | Path, first_page: int, last_page: int, dpi: int, *,
    timeout: float = POPPLER_TIMEOUT_S,
) -> Iterator[Image.Image]:
    """Rasterize pages ``first_page..last_page`` (1-based) with one ``pdftoppm`` process,
    yielding each page as an RGB image as soon as poppler has drawn it.

    The pixels are exactly ``render_pdf_page``'s (same flags: ``-r dpi -cropbox``). The
    whole run shares ``timeout``. Raises ``BadInputError`` naming the pages when poppler
    fails or stops early, ``MissingDependencyError`` when it is not installed. Closing the
    generator early stops poppler.
    """
    path = Path(path)
    if not 1 <= first_page <= last_page:
        raise ValueError(f"bad page range {first_page}-{last_page}")
    where = f"page {first_page}" if first_page == last_page else \
        f"pages {first_page}-{last_page}"
    argv = [_pdftoppm(), "-r", str(dpi), "-cropbox", "-f", str(first_page), "-l",
            str(last_page), _tool_arg(path)]
    # stderr to a file, not a pipe: poppler can print thousands of warnings for a damaged
    # page, and a full stderr pipe nobody reads would block it while we read stdout.
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=errors)
        except OSError as exc:  # removed between which() and here, or not executable
            raise _missing_poppler(exc) from exc
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        drawn = 0
        try:
            stdout = proc.stdout
            if stdout is None:  # stdout=PIPE always gives one; a typed error, not an assert
                raise RetrieverError("pdftoppm was started without an output pipe")
            while True:
                try:
                    header = _read_ppm_header(stdout)
                    if header is None:
                        break
                    magic, width, height, _ = header
                    mode, channels = ("RGB", 3) if magic == b"P6" else ("L", 1)
                    data = stdout.read(width * height * channels)
                    if len(data) != width * height * channels:
                        raise ValueError("truncated pixel data")
                except ValueError as exc:
                    if timed_out.is_set():
                        break  # reported below, with the real cause
                    proc.wait()
                    raise _render_failure(path, where, errors, proc.returncode,
                                          f"unreadable poppler output ({exc})") from exc
                image = Image.frombytes(mode, (width, height), data)
                del data  # the image holds its own copy; do not keep two
                drawn += 1
                yield image if mode == "RGB" else image.convert("RGB")
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # the caller stopped early, or we are failing
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
        if timed_out.is_set():
            raise BadInputError(str(path), "too-large",
                                f"{where}: rendering took longer than {timeout:g} s")
        expected = last_page - first_page + 1
        # Only the count matters: poppler exits non-zero after warnings it drew past, and
        # render_pdf_page (through pdf2image) ignores its exit status too.
        if drawn != expected:
            raise _render_failure(path, where, errors, proc.returncode,
                                  f"poppler produced {drawn} of {expected} page(s)")


def _render_failure(path: Path, where: str, errors: BinaryIO, returncode: int | None,
                    fallback: str) -> BadInputError:
    errors.seek(0)
    stderr = errors.read(64 * 1024).decode("utf-8", "replace")
    if not stderr.strip():
        return BadInputError(str(path), "corrupt", f"{where}: {fallback}")
    error = _classify_poppler_error(path, stderr)
    return BadInputError(str(path), error.reason, f"{where}: {error.detail}", hint=error.hint)

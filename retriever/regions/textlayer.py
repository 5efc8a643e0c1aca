"""Regions from a PDF's own text layer, through poppler's ``pdftotext -bbox-layout``.

pdftotext already groups words into lines and lines into blocks, in flow (reading)
order, and gives every box in PDF points with the origin top-left. We keep its grouping:
a ``<block>`` becomes a paragraph, a ``<line>`` a line and a ``<word>`` a word.

The XHTML goes to a temporary file and is parsed page by page with ``iterparse``, so a
thousand-page PDF never sits in memory as one tree.
"""

from __future__ import annotations

__all__ = ["DEFAULT_TIMEOUT_S", "parse_bbox_layout", "text_layer_regions"]

import io
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import BinaryIO

from ..doctor import POPPLER_INSTALL
from ..errors import BadInputError, MissingDependencyError, UsageError
from ..ingest.filekinds import stat_regular
from ..types import Region
from .layout import WordTuple, normalize_box, regions_from_words

DEFAULT_TIMEOUT_S = 300

# pdftotext escapes & < > " ' but passes control characters through, and those make the
# XHTML invalid XML. They are single bytes in UTF-8, never part of a multi-byte sequence,
# so deleting them chunk by chunk is safe.
_XML_INVALID_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))


class _XmlSafeReader:
    """File wrapper whose ``read`` drops bytes that XML 1.0 forbids."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size).translate(None, _XML_INVALID_BYTES)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # drop the XHTML namespace


def _page_regions(page: ET.Element) -> list[Region]:
    try:
        width = float(page.get("width", "0"))
        height = float(page.get("height", "0"))
    except ValueError:
        return []
    if not (width > 0 and height > 0):
        return []
    words: list[WordTuple] = []
    block_no = 0
    for block in page.iter():
        if _local(block.tag) != "block":
            continue
        block_no += 1
        for line_no, line in enumerate(el for el in block if _local(el.tag) == "line"):
            for word in line:
                if _local(word.tag) != "word" or not (word.text or "").strip():
                    continue
                try:
                    x0, y0, x1, y1 = (float(word.get(k, "nan")) for k in
                                      ("xMin", "yMin", "xMax", "yMax"))
                except ValueError:
                    continue
                if any(v != v for v in (x0, y0, x1, y1)):  # NaN: attribute missing
                    continue
                bbox = normalize_box(x0, y0, x1, y1, width, height)
                words.append((bbox, word.text or "", None, block_no, 0, line_no))
    return regions_from_words(words, source="text_layer")


def parse_bbox_layout(stream: BinaryIO, first_page: int = 1) -> dict[int, list[Region]]:
    """Parse ``pdftotext -bbox-layout`` XHTML; pages are numbered from ``first_page``.

    Raises ``xml.etree.ElementTree.ParseError`` on malformed input.
    """
    pages: dict[int, list[Region]] = {}
    number = first_page
    parents: list[ET.Element] = []
    for event, elem in ET.iterparse(_XmlSafeReader(stream), events=("start", "end")):
        if event == "start":
            parents.append(elem)
            continue
        parents.pop()
        if _local(elem.tag) == "page":
            pages[number] = _page_regions(elem)
            number += 1
            elem.clear()
            if parents:  # free the finished page entirely, not just its contents
                parents[-1].remove(elem)
    return pages


def _failure(path: str, rc: int, stderr: str) -> BadInputError:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    detail = "; ".join(dict.fromkeys(lines))[-500:] or f"pdftotext exited with {rc}"
    low = stderr.lower()
    if "password" in low or "encrypt" in low:
        return BadInputError(path, "encrypted", detail,
                             hint="decrypt it first, e.g. `qpdf --decrypt in.pdf out.pdf`")
    if "permission denied" in low or "couldn't open file" in low:
        return BadInputError(path, "unreadable", detail)
    return BadInputError(path, "corrupt", detail)


def text_layer_regions(
    pdf_path: str | os.PathLike[str],
    first_page: int | None = None,
    last_page: int | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[int, list[Region]]:
    """Paragraph regions of each page (1-based) from the PDF's text layer.

    Every page in the range is a key; pages without text map to ``[]``. A range past the
    last page gives the pages that exist (possibly none), like pdftotext itself.
    """
    for name, value in (("first_page", first_page), ("last_page", last_page)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise UsageError(f"{name} must be a page number >= 1, got {value!r}")
    if first_page is not None and last_page is not None and first_page > last_page:
        raise UsageError(f"first_page {first_page} is after last_page {last_page}")
    path = Path(pdf_path)
    if stat_regular(path).st_size == 0:  # not-found, a FIFO or a directory raise here
        raise BadInputError(str(path), "empty")
    exe = shutil.which("pdftotext")
    if exe is None:
        raise MissingDependencyError("pdftotext (poppler-utils) is not installed or not on PATH",
                                     hint=POPPLER_INSTALL)

    argv = [exe, "-bbox-layout", "-enc", "UTF-8"]
    if first_page is not None:
        argv += ["-f", str(first_page)]
    if last_page is not None:
        argv += ["-l", str(last_page)]
    # an absolute path never starts with '-', so pdftotext cannot take it for an option;
    # the layout comes back on stdout ("-"), not in a temporary file, so a process killed
    # mid-extraction leaves nothing behind (a batch of pages is a few hundred KB of HTML)
    argv += [str(path.resolve()), "-"]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except FileNotFoundError as exc:  # removed between which() and run()
        raise MissingDependencyError(f"pdftotext cannot run: {exc}",
                                     hint=POPPLER_INSTALL) from exc
    except subprocess.TimeoutExpired as exc:
        raise BadInputError(str(path), "too-large",
                            f"pdftotext took longer than {timeout:g}s") from exc
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        if "wrong page range" in stderr.lower():
            return {}  # the range starts past the last page: no pages to report
        raise _failure(str(path), proc.returncode, stderr)
    try:
        return parse_bbox_layout(io.BytesIO(proc.stdout), first_page or 1)
    except ET.ParseError as exc:
        raise BadInputError(str(path), "corrupt",
                            f"unreadable pdftotext output: {exc}") from exc

"""Page text as the index stored it, and the fixed-size chunks a chunking recipe makes.

Baselines read the text of each page's stored regions (text layer or OCR), so they see
exactly the words our index sees, scans included. Words keep their boxes, so a chunk has
a box too: the union of its words' boxes.
"""

from __future__ import annotations

__all__ = ["Chunk", "PageText", "chunk_words", "page_text"]

from collections.abc import Sequence
from dataclasses import dataclass

from ..types import BBox, Region

Word = tuple[str, BBox]


@dataclass(frozen=True)
class PageText:
    """One indexed page: its key (``doc_id:page``), plain text and words with boxes."""

    key: str
    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Chunk:
    key: str  # the page it belongs to
    text: str
    bbox: BBox


def _words_of(line: Region) -> list[Word]:
    words = [(w.text, w.bbox) for w in line.children if w.level == "word" and w.text.strip()]
    if words:
        return words
    return [(t, line.bbox) for t in line.text.split()]  # no word boxes: use the line's


def page_text(key: str, regions: Sequence[Region]) -> PageText:
    """Paragraphs one per line of text, words in reading order."""
    words: list[Word] = []
    paragraphs = []
    for paragraph in regions:
        own = [w for line in paragraph.lines for w in _words_of(line)]
        if own:
            words.extend(own)
            paragraphs.append(" ".join(t for t, _ in own))
    return PageText(key=key, text="\n".join(paragraphs), words=tuple(words))


def _union(boxes: Sequence[BBox]) -> BBox:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def chunk_words(page: PageText, size: int = 500, overlap: int = 50) -> list[Chunk]:
    """Split a page into chunks of at most ``size`` characters, cut at whitespace.

    Consecutive chunks share trailing words of at most ``overlap`` characters, like the
    usual recursive splitter with ``chunk_size=500, chunk_overlap=50``. A single word
    longer than ``size`` is a chunk of its own.
    """
    if size < 1 or overlap < 0 or overlap >= size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got {size}, {overlap}")
    words = page.words
    chunks: list[Chunk] = []
    start = 0
    while start < len(words):
        end, length = start, 0
        while end < len(words):
            extra = len(words[end][0]) + (1 if end > start else 0)
            if end > start and length + extra > size:
                break
            length += extra
            end += 1
        piece = words[start:end]
        chunks.append(Chunk(page.key, " ".join(t for t, _ in piece), _union([b for _, b in piece])))
        if end >= len(words):
            break
        # Step back over trailing words that fit in the overlap, but always move forward.
        back, carried = end, 0
        while back - 1 > start and carried + len(words[back - 1][0]) + 1 <= overlap:
            back -= 1
            carried += len(words[back][0]) + 1
        start = back
    return chunks

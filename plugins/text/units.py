"""What one text vector embeds: the page's text cut at a granularity, each piece boxed.

Every unit is a run of consecutive lines of one paragraph; its box is the union of those
lines' boxes, so grounding (vector relevance spread onto regions by box overlap) stays
exact whatever the granularity:

* ``lines``: each line, embedded with ``context`` neighbouring lines of its paragraph as
  context; the box is the line alone (its neighbours only help the embedding).
* ``paragraphs``: each paragraph whole (the model truncates what exceeds its window).
* ``windows``: each paragraph cut into runs of whole lines of at most ``window`` tokens,
  consecutive runs sharing up to ``overlap`` tokens; a paragraph that fits is one window.
* ``mixed``: the lines and the windows of the page together; MaxSim takes the best, so a
  short precise line and a paragraph-sized window can each win where they are better.

Pure Python (no torch): the ONNX query path and tests use it without the model.
"""

from __future__ import annotations

__all__ = ["GRANULARITIES", "Granularity", "TextUnit", "TokenCounter", "union_box",
           "line_units", "paragraph_units", "window_units", "page_units"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from retriever.types import BBox, Region

Granularity = Literal["lines", "paragraphs", "windows", "mixed"]
GRANULARITIES: tuple[str, ...] = ("lines", "paragraphs", "windows", "mixed")
#: tokens of each text (without special tokens), for many texts at once
TokenCounter = Callable[[Sequence[str]], Sequence[int]]


@dataclass(frozen=True)
class TextUnit:
    text: str
    box: BBox


def union_box(lines: Sequence[Region]) -> BBox:
    return (min(ln.bbox[0] for ln in lines), min(ln.bbox[1] for ln in lines),
            max(ln.bbox[2] for ln in lines), max(ln.bbox[3] for ln in lines))


def _join(lines: Sequence[Region]) -> str:
    return " ".join(ln.text.strip() for ln in lines)


def _paragraph_lines(regions: Sequence[Region]) -> list[list[Region]]:
    """Non-empty lines per paragraph, paragraphs without text left out."""
    out = []
    for paragraph in regions:
        lines = [ln for ln in paragraph.lines if ln.text.strip()]
        if lines:
            out.append(lines)
    return out


def line_units(regions: Sequence[Region], context: int = 1) -> list[TextUnit]:
    units = []
    for lines in _paragraph_lines(regions):
        for i, line in enumerate(lines):
            window = lines[max(0, i - context): i + context + 1]
            units.append(TextUnit(_join(window), line.bbox))
    return units


def paragraph_units(regions: Sequence[Region]) -> list[TextUnit]:
    return [TextUnit(_join(lines), union_box(lines)) for lines in _paragraph_lines(regions)]


def _windows(counts: Sequence[int], window: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, stop)`` line ranges: at most ``window`` tokens each (a longer line alone),
    each next range starting as early as keeps its shared tail within ``overlap`` tokens."""
    spans, start, n = [], 0, len(counts)
    while start < n:
        stop, total = start + 1, counts[start]
        while stop < n and total + counts[stop] <= window:
            total += counts[stop]
            stop += 1
        spans.append((start, stop))
        if stop >= n:
            break
        # the next range begins after `start` (progress) and shares at most `overlap`
        nxt, shared = stop, 0
        while nxt - 1 > start and shared + counts[nxt - 1] <= overlap:
            nxt -= 1
            shared += counts[nxt]
        start = nxt
    return spans


def window_units(regions: Sequence[Region], count_tokens: TokenCounter, window: int = 96,
                 overlap: int = 32, span: str = "paragraph") -> list[TextUnit]:
    paragraphs = _paragraph_lines(regions)
    if span == "page":  # one run of lines in reading order: windows cross paragraphs
        paragraphs = [[ln for lines in paragraphs for ln in lines]] if paragraphs else []
    flat = [ln.text.strip() for lines in paragraphs for ln in lines]
    counts = list(count_tokens(flat)) if flat else []
    units, at = [], 0
    for lines in paragraphs:
        mine = counts[at: at + len(lines)]
        at += len(lines)
        for start, stop in _windows(mine, window, overlap):
            units.append(TextUnit(_join(lines[start:stop]), union_box(lines[start:stop])))
    return units


def page_units(regions: Sequence[Region], granularity: str, *, context: int = 1,
               window: int = 96, overlap: int = 32, span: str = "paragraph",
               count_tokens: TokenCounter | None = None) -> list[TextUnit]:
    """The units of one page at ``granularity`` (``count_tokens`` for windows and mixed)."""
    if granularity == "lines":
        return line_units(regions, context)
    if granularity == "paragraphs":
        return paragraph_units(regions)
    if granularity not in ("windows", "mixed"):
        raise ValueError(f"unknown granularity {granularity!r}; use {', '.join(GRANULARITIES)}")
    if count_tokens is None:
        raise ValueError(f"granularity {granularity!r} needs a token counter")
    windows = window_units(regions, count_tokens, window, overlap, span)
    if granularity == "windows":
        return windows
    # mixed: a one-line paragraph's window is its line; one vector for both is enough
    units = line_units(regions, context)
    seen = set(units)
    return units + [u for u in windows if u not in seen]

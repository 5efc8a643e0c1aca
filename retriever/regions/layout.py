"""Small pure helpers for building region trees (paragraph > line > word).

The text layer and OCR engines both end up with a flat list of words tagged with the
block/paragraph/line they belong to; ``regions_from_words`` turns that into the nested
``Region`` tree, so both sources produce exactly the same shape.
"""

from __future__ import annotations

__all__ = [
    "WordTuple",
    "normalize_box",
    "union_box",
    "mean_confidence",
    "regions_from_words",
    "flatten_lines",
]

from collections.abc import Iterable, Sequence

from ..types import BBox, Region, RegionSource

#: ``(bbox, text, confidence, block, paragraph, line)``; bbox normalized, confidence 0..1
#: or None. Paragraphs are keyed by ``(block, paragraph)``, lines by all three numbers.
WordTuple = tuple[BBox, str, float | None, int, int, int]


def _clamp(v: float) -> float:
    return min(1.0, max(0.0, v))


def normalize_box(
    x0: float, y0: float, x1: float, y1: float, width: float, height: float
) -> BBox:
    """Pixel/point box on a ``width`` x ``height`` page -> normalized, clamped, ordered box.

    Clamping matters: PDF text can sit partly outside the media box and OCR boxes can touch
    the border, and ``Region`` rejects anything outside ``[0, 1]``.
    """
    if not (width > 0 and height > 0):
        raise ValueError(f"page size must be positive, got {width} x {height}")
    nx0, nx1 = sorted((_clamp(x0 / width), _clamp(x1 / width)))
    ny0, ny1 = sorted((_clamp(y0 / height), _clamp(y1 / height)))
    return (nx0, ny0, nx1, ny1)


def union_box(boxes: Iterable[Sequence[float]]) -> BBox:
    """The smallest box holding every box given (raises ValueError when there are none)."""
    items = [tuple(float(v) for v in b) for b in boxes]
    if not items:
        raise ValueError("union_box needs at least one box")
    return (
        min(b[0] for b in items),
        min(b[1] for b in items),
        max(b[2] for b in items),
        max(b[3] for b in items),
    )


def mean_confidence(values: Iterable[float | None]) -> float | None:
    """Mean of the known confidences, or None when none is known (text layer)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _group_line(words: list[Region], source: RegionSource) -> Region:
    return Region(
        bbox=union_box(w.bbox for w in words),
        text=" ".join(w.text for w in words),
        level="line",
        source=source,
        confidence=mean_confidence(w.confidence for w in words),
        children=tuple(words),
    )


def regions_from_words(
    words: Iterable[WordTuple], *, source: RegionSource = "ocr"
) -> list[Region]:
    """Group tagged words into paragraphs of lines of words, in first-appearance order.

    Words with blank text are dropped; paragraphs and lines left empty disappear. A
    paragraph's confidence is the mean over its words (not its lines), so a long line
    weighs more than a one-word line.
    """
    # dicts keep insertion order, which is the reading order the caller gave us
    paragraphs: dict[tuple[int, int], dict[int, list[Region]]] = {}
    for bbox, text, conf, block, par, line in words:
        text = " ".join(text.split())
        if not text:
            continue
        word = Region(bbox=bbox, text=text, level="word", source=source, confidence=conf)
        paragraphs.setdefault((block, par), {}).setdefault(line, []).append(word)

    out: list[Region] = []
    for lines in paragraphs.values():
        line_regions = [_group_line(ws, source) for ws in lines.values()]
        all_words = [w for ln in line_regions for w in ln.children]
        out.append(
            Region(
                bbox=union_box(ln.bbox for ln in line_regions),
                text=" ".join(ln.text for ln in line_regions),
                level="paragraph",
                source=source,
                confidence=mean_confidence(w.confidence for w in all_words),
                children=tuple(line_regions),
            )
        )
    return out


def flatten_lines(paragraphs: Iterable[Region]) -> list[Region]:
    """Every line of every paragraph, in order (a paragraph without lines stands as one)."""
    return [line for p in paragraphs for line in p.lines]

"""A page's region tree (paragraph > line > word) as flat columns, and a lazy sequence of it.

Why: a page holds hundreds of words, and building a validated ``Region`` object for each
one on every search cost more than the search itself. Grounding needs only the boxes of one
level and the texts of the few regions it returns, so storage keeps the tree flat and
search reads arrays; ``Region`` objects are built only when someone asks for them
(``LazyRegions``).

Layout: nodes in pre-order (a paragraph, then its first line, that line's words, the next
line, ...), ``parents[i]`` the index of node ``i``'s parent (-1 for a top-level region).

Stored form, a JSON object (``"v": 2``)::

    {"v": 2, "boxes": "<base64 of float64 x0 y0 x1 y1 ...>", "levels": "plwwlww",
     "parents": [-1, 0, 1, ...], "texts": [null, null, "word", ...], "sources": "ttttttt",
     "conf": null | "<base64 of float64, NaN = unknown>"}

A text is ``null`` when it equals its children's texts joined by spaces (what
``regions_from_words`` makes), so a paragraph's words are not stored three times. Numbers
are little-endian float64 bytes in base64: they read back bit for bit, and decoding them is
an order of magnitude faster than parsing a thousand JSON floats. The older form, a JSON
list of ``Region.to_dict()`` trees, is still read.
"""

from __future__ import annotations

__all__ = ["LEVELS", "SOURCES", "RegionColumns", "LazyRegions", "regions_json",
           "regions_object"]

import base64
import binascii
import json
import math
from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from ..errors import RetrieverError
from ..types import Region, RegionLevel

LEVELS: tuple[RegionLevel, ...] = ("paragraph", "line", "word")
SOURCES: tuple[str, ...] = ("text_layer", "ocr")
_LEVEL_CHARS = "plw"
_SOURCE_CHARS = "to"
FORMAT_VERSION = 2


class RegionColumns:
    """One page's regions, flat: ``boxes`` (R, 4) float64, codes per node, texts.

    ``levels`` and ``sources`` index ``LEVELS`` and ``SOURCES``; ``confidences`` is NaN where
    unknown (the text layer); ``texts[i]`` is None where it is the join of its children's.
    """

    __slots__ = ("boxes", "levels", "parents", "texts", "sources", "confidences", "_kids",
                 "_counts")

    def __init__(self, boxes: np.ndarray, levels: np.ndarray, parents: np.ndarray,
                 texts: Sequence[str | None], sources: np.ndarray,
                 confidences: np.ndarray) -> None:
        n = len(texts)
        self.boxes = np.asarray(boxes, np.float64).reshape(-1, 4)  # (R, 4)
        self.levels = np.asarray(levels, np.int8)  # (R,)
        self.parents = np.asarray(parents, np.int32)  # (R,)
        self.texts = list(texts)
        self.sources = np.asarray(sources, np.int8)  # (R,)
        self.confidences = np.asarray(confidences, np.float64)  # (R,)
        self._kids: tuple[np.ndarray, np.ndarray] | None = None  # CSR: order, starts
        self._counts: np.ndarray | None = None
        shapes = {self.boxes.shape[0], self.levels.size, self.parents.size, self.sources.size,
                  self.confidences.size}
        if shapes != {n}:
            raise RetrieverError("stored regions are inconsistent: columns differ in length",
                                 hint="re-index the document")
        # pre-order: a parent always comes before its children
        if n and (np.any(self.parents >= np.arange(n)) or np.any(self.parents < -1)):
            raise RetrieverError("stored regions are inconsistent: bad parent index",
                                 hint="re-index the document")

    # -- building -----------------------------------------------------------------------

    @classmethod
    def empty(cls) -> RegionColumns:
        return cls(np.zeros((0, 4)), [], [], [], [], [])

    @classmethod
    def from_regions(cls, regions: Sequence[Region]) -> RegionColumns:
        """Flatten ``Region`` trees (the top-level regions of a page, reading order)."""
        if isinstance(regions, LazyRegions):
            return regions.columns
        acc = _Accumulator()
        for region in regions:
            acc.add(region.bbox, region.text, region.level, region.source, region.confidence,
                    region.children, -1, is_dict=False)
        return acc.build()

    @classmethod
    def from_tree_dicts(cls, trees: Sequence[dict[str, Any]]) -> RegionColumns:
        """Flatten the older stored form (``Region.to_dict()`` trees) without Region objects."""
        acc = _Accumulator()
        for d in trees:
            acc.add(d["bbox"], d["text"], d.get("level", "paragraph"), d.get("source", "ocr"),
                    d.get("confidence"), d.get("children", ()), -1, is_dict=True)
        return acc.build()

    @classmethod
    def from_stored(cls, stored: str | bytes | dict[str, Any] | list[Any]) -> RegionColumns:
        """Either stored form: a JSON string, or its parsed object / list."""
        if isinstance(stored, (str, bytes)):
            stored = json.loads(stored) if stored else []
        if isinstance(stored, list):
            return cls.from_tree_dicts(stored)
        if not isinstance(stored, dict) or stored.get("v") != FORMAT_VERSION:
            raise RetrieverError("stored regions are in an unknown format",
                                 hint="this collection was written by a newer version")
        try:
            levels = np.frombuffer(stored["levels"].encode("ascii"), np.uint8)
            sources = np.frombuffer(stored["sources"].encode("ascii"), np.uint8)
            texts = stored["texts"]
            conf = stored["conf"]
            return cls(
                _unpack(stored["boxes"]).reshape(-1, 4),
                _decode_codes(levels, _LEVEL_CHARS), np.asarray(stored["parents"], np.int32),
                texts, _decode_codes(sources, _SOURCE_CHARS),
                np.full(len(texts), math.nan) if conf is None else _unpack(conf))
        except (KeyError, TypeError, ValueError, UnicodeEncodeError, binascii.Error) as exc:
            raise RetrieverError(f"stored regions are damaged: {exc}",
                                 hint="re-index the document") from exc

    def to_stored(self) -> dict[str, Any]:
        """The stored form (see the module docstring), ready for ``json.dumps``."""
        return {
            "v": FORMAT_VERSION,
            "boxes": _pack(self.boxes),
            "levels": "".join(_LEVEL_CHARS[c] for c in self.levels.tolist()),
            "parents": self.parents.tolist(),
            "texts": self.texts,
            "sources": "".join(_SOURCE_CHARS[c] for c in self.sources.tolist()),
            "conf": None if np.isnan(self.confidences).all() else _pack(self.confidences),
        }

    # -- reading ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.texts)

    def child_counts(self) -> np.ndarray:
        """(R,) how many children each node has."""
        if self._counts is None:
            self._counts = np.bincount(self.parents[self.parents >= 0], minlength=len(self))
        return self._counts

    def children(self, i: int) -> list[int]:
        if self._kids is None:
            # children grouped by parent, in reading order (a stable sort keeps pre-order)
            order = np.argsort(self.parents, kind="stable")
            order = order[self.parents[order] >= 0]
            starts = np.zeros(len(self) + 1, np.int64)
            np.cumsum(self.child_counts(), out=starts[1:])
            self._kids = (order, starts)
        order, starts = self._kids
        return order[starts[i]:starts[i + 1]].tolist()

    def top_level(self) -> np.ndarray:
        return np.flatnonzero(self.parents < 0)

    def text(self, i: int) -> str:
        stored = self.texts[i]
        if stored is not None:
            return stored
        return " ".join(self.text(c) for c in self.children(i))

    def level_name(self, i: int) -> RegionLevel:
        return LEVELS[int(self.levels[i])]

    def units(self, level: RegionLevel) -> np.ndarray:
        """Nodes that stand for ``level``: the nodes of that level, and the coarser nodes
        without children (a paragraph without lines stands for one line), reading order."""
        depth = LEVELS.index(level)
        if not len(self):
            return np.zeros(0, np.int64)
        has_kids = self.child_counts() > 0
        return np.flatnonzero((self.levels == depth) | ((self.levels < depth) & ~has_kids))

    def region(self, i: int) -> Region:
        """Node ``i`` and its subtree as a (validated) ``Region``."""
        conf = float(self.confidences[i])
        return Region(bbox=tuple(self.boxes[i].tolist()),  # type: ignore[arg-type]
                      text=self.text(i), level=self.level_name(i),
                      source=SOURCES[int(self.sources[i])],  # type: ignore[arg-type]
                      confidence=None if math.isnan(conf) else conf,
                      children=tuple(self.region(c) for c in self.children(i)))

    def to_regions(self) -> list[Region]:
        return [self.region(int(i)) for i in self.top_level()]


def _pack(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, "<f8").tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text, validate=True), "<f8").astype(np.float64)


def _decode_codes(chars: np.ndarray, alphabet: str) -> np.ndarray:
    table = np.full(256, -1, np.int8)
    for code, ch in enumerate(alphabet):
        table[ord(ch)] = code
    out = table[chars]
    if out.size and out.min() < 0:
        raise ValueError(f"unknown code in stored regions (expected {alphabet!r})")
    return out


class _Accumulator:
    """Pre-order flattening shared by ``Region`` trees and their dict form."""

    def __init__(self) -> None:
        self.boxes: list[Sequence[float]] = []
        self.levels: list[int] = []
        self.parents: list[int] = []
        self.texts: list[str | None] = []
        self.sources: list[int] = []
        self.conf: list[float] = []

    def add(self, bbox: Sequence[float], text: str, level: str, source: str,
            confidence: float | None, children: Sequence[Any], parent: int, *,
            is_dict: bool) -> str:
        if level not in LEVELS or source not in SOURCES:
            raise RetrieverError(f"stored region has unknown level {level!r} or source "
                                 f"{source!r}", hint="re-index the document")
        index = len(self.texts)
        self.boxes.append(tuple(float(v) for v in bbox))
        self.levels.append(LEVELS.index(level))  # type: ignore[arg-type]
        self.parents.append(parent)
        self.texts.append(text)
        self.sources.append(SOURCES.index(source))
        self.conf.append(math.nan if confidence is None else float(confidence))
        child_texts = []
        for c in children:
            if is_dict:
                child_texts.append(self.add(c["bbox"], c["text"], c.get("level", "paragraph"),
                                            c.get("source", "ocr"), c.get("confidence"),
                                            c.get("children", ()), index, is_dict=True))
            else:
                child_texts.append(self.add(c.bbox, c.text, c.level, c.source, c.confidence,
                                            c.children, index, is_dict=False))
        if child_texts and text == " ".join(child_texts):
            self.texts[index] = None  # derivable: stored once, in the children
        return text

    def build(self) -> RegionColumns:
        if not self.texts:
            return RegionColumns.empty()
        return RegionColumns(np.asarray(self.boxes, np.float64), self.levels, self.parents,
                             self.texts, self.sources, self.conf)


class LazyRegions(Sequence[Region]):
    """The top-level regions of a page, parsed from storage only when first read.

    Indexers hand these out in ``PageRecord.regions``: search reads ``columns`` (arrays,
    no Region objects); iterating or indexing builds the Region trees once. Immutable.
    """

    __slots__ = ("_stored", "_columns", "_tree")

    def __init__(self, stored: str | bytes | dict[str, Any] | list[Any] | None = None, *,
                 columns: RegionColumns | None = None) -> None:
        self._stored = stored
        self._columns = columns
        self._tree: list[Region] | None = None

    @classmethod
    def of(cls, regions: Sequence[Region]) -> LazyRegions:
        """Wrap regions already built (flattened now, so search never walks the tree)."""
        if isinstance(regions, LazyRegions):
            return regions
        lazy = cls(columns=RegionColumns.from_regions(regions))
        lazy._tree = list(regions)
        return lazy

    @property
    def columns(self) -> RegionColumns:
        if self._columns is None:
            self._columns = RegionColumns.from_stored(self._stored or [])
        return self._columns

    @property
    def parsed(self) -> bool:
        """Whether the Region objects were built (tests check that search does not)."""
        return self._tree is not None

    def _regions(self) -> list[Region]:
        if self._tree is None:
            self._tree = self.columns.to_regions()
        return self._tree

    def to_json(self) -> str:
        """The stored form as text; a stored v2 string is passed through untouched."""
        if isinstance(self._stored, str) and self._stored.startswith("{"):
            return self._stored
        return json.dumps(self.columns.to_stored())

    @overload
    def __getitem__(self, index: int) -> Region: ...
    @overload
    def __getitem__(self, index: slice) -> list[Region]: ...
    def __getitem__(self, index: int | slice) -> Region | list[Region]:
        return self._regions()[index]

    def __len__(self) -> int:
        if self._tree is not None:
            return len(self._tree)
        return int(self.columns.top_level().size)

    def __iter__(self) -> Iterator[Region]:
        return iter(self._regions())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (LazyRegions, list, tuple)):
            return self._regions() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list, so unhashable like one

    def __repr__(self) -> str:
        state = "parsed" if self._tree is not None else "not parsed"
        return f"LazyRegions({len(self)} regions, {state})"


def regions_object(regions: Sequence[Region]) -> dict[str, Any]:
    """Regions in the stored form, as a JSON-ready object (FAISS segment lines)."""
    return RegionColumns.from_regions(regions).to_stored()


def regions_json(regions: Sequence[Region]) -> str:
    """Regions in the stored form, as JSON text (the LanceDB ``regions`` column)."""
    if isinstance(regions, LazyRegions):
        return regions.to_json()
    return json.dumps(regions_object(regions))

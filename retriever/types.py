"""Core data types shared by every layer: pages, regions, multi-vectors and hits.

Every vector an encoder produces carries a box on its page, in normalized coordinates
``[x0, y0, x1, y1]`` with the origin top-left and each value in ``[0, 1]``. Grounding, the
index and compression all rely on that one convention.
"""

from __future__ import annotations

__all__ = [
    "BBox",
    "RegionLevel",
    "RegionSource",
    "Region",
    "Page",
    "MultiVector",
    "PageRecord",
    "RegionHit",
    "Hit",
    "FileFailure",
    "WHOLE_PAGE",
]

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import RetrieverError

if TYPE_CHECKING:  # PIL is only needed by callers that carry images
    from PIL.Image import Image

BBox = tuple[float, float, float, float]
RegionLevel = Literal["paragraph", "line", "word"]
RegionSource = Literal["text_layer", "ocr"]

WHOLE_PAGE: BBox = (0.0, 0.0, 1.0, 1.0)
_BOX_TOLERANCE = 1e-4


def _check_bbox(bbox: BBox, what: str) -> BBox:
    if len(bbox) != 4:
        raise RetrieverError(f"{what}: a box needs 4 numbers, got {len(bbox)}")
    x0, y0, x1, y1 = (float(v) for v in bbox)
    lo, hi = -_BOX_TOLERANCE, 1.0 + _BOX_TOLERANCE
    if not all(lo <= v <= hi for v in (x0, y0, x1, y1)) or x1 < x0 or y1 < y0:
        raise RetrieverError(f"{what}: box {bbox} is not normalized [x0, y0, x1, y1] in [0, 1]")
    clamp = lambda v: min(1.0, max(0.0, v))  # noqa: E731 - tiny local helper
    return (clamp(x0), clamp(y0), clamp(x1), clamp(y1))


@dataclass(frozen=True)
class Region:
    """A piece of text on a page: a paragraph holds lines, a line holds words."""

    bbox: BBox
    text: str
    level: RegionLevel = "paragraph"
    source: RegionSource = "ocr"
    confidence: float | None = None  # 0..1 for OCR; None for the text layer (exact)
    children: tuple[Region, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "bbox", _check_bbox(self.bbox, f"region {self.text[:30]!r}"))
        object.__setattr__(self, "children", tuple(self.children))

    @property
    def lines(self) -> tuple[Region, ...]:
        """Lines of a paragraph (the paragraph itself stands for one line if it has none)."""
        if self.level == "line":
            return (self,)
        if self.level == "paragraph":
            return tuple(c for c in self.children if c.level == "line") or (self,)
        return ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "bbox": list(self.bbox),
            "text": self.text,
            "level": self.level,
            "source": self.source,
            "confidence": self.confidence,
            "children": [c.to_dict() for c in self.children],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Region:
        return cls(
            bbox=tuple(data["bbox"]),  # type: ignore[arg-type]
            text=data["text"],
            level=data.get("level", "paragraph"),
            source=data.get("source", "ocr"),
            confidence=data.get("confidence"),
            children=tuple(cls.from_dict(c) for c in data.get("children", ())),
        )


@dataclass
class Page:
    """One page of one document, as ingest hands it to OCR and encoders."""

    doc_id: str  # content hash of the source file
    source: str  # path of the source file
    page_number: int  # 1-based
    width: int  # pixel size of ``image`` (the rendered page)
    height: int
    image: Image | None = None
    regions: list[Region] = field(default_factory=list)  # paragraphs, reading order
    has_text_layer: bool = False
    dpi: int | None = None  # rasterization DPI for PDFs; None for images

    @property
    def key(self) -> str:
        return f"{self.doc_id}:{self.page_number}"


class MultiVector:
    """``vectors`` (n, d) L2-normalized floats with ``boxes`` (n, 4) on the page.

    ``n`` may be zero (a page with no text for a text encoder). Construction validates
    shapes, finiteness, normalization and boxes, so a broken encoder fails loudly here
    instead of producing silently wrong scores.

    ``counts`` (n,) is how many encoder vectors each vector stands for once a compressor
    merged some (its box is then the union of theirs); None means one each. Grounding
    weighs a vector by it, so a merged vector counts as the patches it replaced.
    """

    __slots__ = ("vectors", "boxes", "counts")

    def __init__(self, vectors: np.ndarray, boxes: np.ndarray, *, check_norm: bool = True,
                 counts: np.ndarray | None = None):
        vectors = np.asarray(vectors)
        if vectors.dtype not in (np.float32, np.float16):
            vectors = vectors.astype(np.float32)
        boxes = np.asarray(boxes, dtype=np.float32)
        if vectors.ndim != 2:
            raise RetrieverError(f"MultiVector: vectors must be 2-D (n, d), got {vectors.shape}")
        if boxes.shape != (vectors.shape[0], 4):
            raise RetrieverError(
                f"MultiVector: boxes must be ({vectors.shape[0]}, 4), got {boxes.shape}"
            )
        if vectors.size and not np.isfinite(vectors).all():
            raise RetrieverError("MultiVector: vectors contain NaN or inf")
        if boxes.size:
            if not np.isfinite(boxes).all():
                raise RetrieverError("MultiVector: boxes contain NaN or inf")
            tol = _BOX_TOLERANCE
            inside = (boxes >= -tol).all() and (boxes <= 1 + tol).all()
            ordered = (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()
            if not (inside and ordered):
                raise RetrieverError("MultiVector: boxes must be normalized [x0, y0, x1, y1]")
            boxes = np.clip(boxes, 0.0, 1.0)
        if check_norm and vectors.size:
            norms = np.linalg.norm(vectors.astype(np.float32), axis=1)
            if not np.allclose(norms, 1.0, atol=1e-2):
                raise RetrieverError("MultiVector: vectors must be L2-normalized")
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int32)
            if counts.shape != (vectors.shape[0],):
                raise RetrieverError(
                    f"MultiVector: counts must be ({vectors.shape[0]},), got {counts.shape}")
            if counts.size and counts.min() < 1:
                raise RetrieverError("MultiVector: every count must be at least 1")
        self.vectors = vectors
        self.boxes = boxes
        self.counts = counts

    @classmethod
    def empty(cls, dim: int) -> MultiVector:
        return cls(np.zeros((0, dim), np.float32), np.zeros((0, 4), np.float32))

    @classmethod
    def normalized(cls, vectors: np.ndarray, boxes: np.ndarray) -> MultiVector:
        """Build from raw vectors, L2-normalizing each row (zero rows raise)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        if vectors.size and (norms == 0).any():
            raise RetrieverError("MultiVector: cannot normalize a zero vector")
        return cls(vectors / np.where(norms == 0, 1, norms), boxes)

    def weights(self) -> np.ndarray:
        """(n,) float32: the encoder vectors each vector stands for (ones if uncompressed)."""
        if self.counts is None:
            return np.ones(self.n, np.float32)
        return self.counts.astype(np.float32)

    @property
    def n(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"MultiVector(n={self.n}, dim={self.dim}, dtype={self.vectors.dtype})"


@dataclass
class PageRecord:
    """What an indexer stores for one page: identity, size, regions and its vectors."""

    doc_id: str
    source: str
    page_number: int
    width: int
    height: int
    embedding: MultiVector
    #: top-level regions, reading order; indexers hand out a lazily parsed sequence
    #: (``retriever.regions.columns.LazyRegions``), so treat it as read-only
    regions: Sequence[Region] = field(default_factory=list)
    has_text_layer: bool = False
    #: every path the document is recorded at (moved or copied files), ``source`` first;
    #: empty means ``(source,)``. Indexers fill it on read.
    paths: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.doc_id}:{self.page_number}"

    @classmethod
    def from_page(cls, page: Page, embedding: MultiVector) -> PageRecord:
        return cls(
            doc_id=page.doc_id,
            source=page.source,
            page_number=page.page_number,
            width=page.width,
            height=page.height,
            embedding=embedding,
            regions=list(page.regions),
            has_text_layer=page.has_text_layer,
        )


@dataclass
class RegionHit:
    """A region returned with a hit: normalized box, text and its relevance score."""

    bbox: BBox
    text: str
    score: float
    level: RegionLevel = "paragraph"
    crop_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"bbox": [round(v, 6) for v in self.bbox], "text": self.text,
               "score": round(float(self.score), 6)}
        if self.crop_path:
            out["crop_path"] = self.crop_path
        return out


@dataclass
class Hit:
    """One search result: a page, its score and the regions on it that answer."""

    rank: int
    score: float
    doc_id: str
    source: str
    page: int  # 1-based
    page_width: int
    page_height: int
    regions: list[RegionHit] = field(default_factory=list)
    crop_path: str | None = None
    #: every path the document is recorded at (a copied file has several); ``source`` is
    #: the first of them that still exists
    paths: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["score"] = round(float(self.score), 6)
        out["regions"] = [r.to_dict() for r in self.regions]
        if out["crop_path"] is None:
            del out["crop_path"]
        if not out["paths"]:
            del out["paths"]
        return out


@dataclass(frozen=True)
class FileFailure:
    """One input file that could not be indexed, and why (for the run's summary)."""

    path: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" + (f" ({self.detail})" if self.detail else "")

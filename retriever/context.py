"""Context for an LLM prompt: the regions that answer a query, cited, within a token budget.

``build_context`` (``Retriever.context``) searches, then picks regions in order of
evidence (pages in rank order, each page's regions best first), skipping a region whose
text is already in (the same or a larger region on) the same page, until the next one
would not fit the budget; smaller ones after it may still fit. The first region alone is
cut to fit rather than left out, so a tight budget still gives something. The chosen
regions are printed per page in reading order, numbered [1], [2] ... in the order they
appear, so an answer can cite them and ``Context.citations`` says where each came from
(source, page, box, doc id, optionally a crop of the region).

The budget counts the tokens of ``prompt_text()`` as a whole, page headings included,
with the tokenizer asked for or the approximation in ``retriever.tokens``.
"""

from __future__ import annotations

__all__ = ["Citation", "Context", "build_context", "ImagesMode"]

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

from .errors import RetrieverError, UsageError
from .pageimages import PageRenderer, png_bytes
from .tokens import TokenCounter, TokenizerArg, token_counter
from .types import BBox, Hit

if TYPE_CHECKING:
    from .sdk import Retriever

ImagesMode = Optional[Literal["path", "base64"]]
_IMAGES_MODES = (None, "path", "base64")
_MIN_TRUNCATED = 8  # tokens: a cut region shorter than this says nothing
_CONTAINED_TOL = 1e-3  # box containment slack when matching regions to reading order
_SPACE = re.compile(r"\s+")


@dataclass
class Citation:
    """One numbered region of the context and where it came from."""

    number: int
    doc_id: str
    source: str
    page: int  # 1-based
    bbox: BBox  # normalized [x0, y0, x1, y1], origin top-left
    text: str
    score: float
    level: str
    hit_rank: int  # the rank of the page it came from in the search
    page_width: int
    page_height: int
    truncated: bool = False  # cut to fit the budget
    crop_path: str | None = None
    image_base64: str | None = None  # PNG, when asked for with images="base64"

    @property
    def label(self) -> str:
        return f"[{self.number}]"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "number": self.number, "label": self.label, "doc_id": self.doc_id,
            "source": self.source, "page": self.page,
            "bbox": [round(float(v), 6) for v in self.bbox], "text": self.text,
            "score": round(float(self.score), 6), "level": self.level,
            "hit_rank": self.hit_rank, "page_width": self.page_width,
            "page_height": self.page_height, "truncated": self.truncated}
        if self.crop_path is not None:
            out["crop_path"] = self.crop_path
        if self.image_base64 is not None:
            out["image_base64"] = self.image_base64
        return out


def _heading(source: str, page: int) -> str:
    return f"{Path(source).name}, page {page}:"


def _line(number: int, text: str) -> str:
    return f"[{number}] {text}"


@dataclass
class Context:
    """What ``Retriever.context`` returns: ``citations`` in prompt order."""

    query: str
    citations: list[Citation]
    budget: int
    tokens: int  # of prompt_text(), by ``tokenizer``
    tokenizer: str  # "approx" or the tokenizer's name
    omitted: int = 0  # regions left out because they did not fit the budget
    duplicates: int = 0  # regions left out because their text was already in
    warnings: list[str] = field(default_factory=list)  # crops that could not be made

    def pages(self) -> list[list[Citation]]:
        """The citations grouped by page, pages in rank order (each in reading order)."""
        return _group(self.citations)

    def prompt_text(self) -> str:
        """The context block for a prompt: one heading per page, then its regions, each
        prefixed with its citation number. Empty when nothing was found."""
        return _render(self.pages())

    def messages(self, question: str | None = None, *,
                 system: str | None = None) -> list[dict[str, str]]:
        """Chat messages for an OpenAI-compatible client: a system message asking for
        answers from the context with [n] citations, and the context plus the question."""
        question = question or self.query
        system = system or ("Answer the question using only the context below. Cite the "
                            "passages you use by their numbers, like [1]. If the context "
                            "does not contain the answer, say so.")
        user = f"Context:\n{self.prompt_text() or '(nothing found)'}\n\nQuestion: {question}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "budget": self.budget, "tokens": self.tokens,
                "tokenizer": self.tokenizer, "omitted": self.omitted,
                "duplicates": self.duplicates, "prompt": self.prompt_text(),
                "citations": [c.to_dict() for c in self.citations],
                "warnings": list(self.warnings)}


def _render(pages: list[list[Citation]]) -> str:
    blocks = [_heading(group[0].source, group[0].page) + "\n"
              + "\n".join(_line(c.number, c.text) for c in group) for group in pages]
    return "\n\n".join(blocks)


def _normal(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


def _candidates(hits: list[Hit]) -> tuple[list[Citation], int]:
    """Every region of every hit, in order of evidence, each text once per page."""
    out: list[Citation] = []
    seen: dict[tuple[str, int], list[str]] = {}
    duplicates = 0
    for hit in hits:
        for region in hit.regions:
            text = _SPACE.sub(" ", region.text).strip()
            if not text:
                continue
            kept = seen.setdefault((hit.doc_id, hit.page), [])
            norm = _normal(text)
            # a line inside a block already taken says nothing new
            if any(norm == other or norm in other for other in kept):
                duplicates += 1
                continue
            kept.append(norm)
            out.append(Citation(0, hit.doc_id, hit.source, hit.page, tuple(region.bbox),
                                text, float(region.score), region.level, hit.rank,
                                hit.page_width, hit.page_height))
    return out, duplicates


def _truncate(text: str, fits: Any) -> str | None:
    """The longest word-boundary prefix of ``text`` (plus " …") for which ``fits``."""
    words = text.split(" ")
    lo, hi = 0, len(words) - 1  # number of words kept; all of them did not fit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(" ".join(words[:mid]) + " …"):
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo]) + " …" if lo else None


def _select(candidates: list[Citation], budget: int,
            count: TokenCounter) -> tuple[list[Citation], int]:
    """Greedy by evidence: take what fits; return the chosen ones and how many did not."""
    chosen: list[Citation] = []
    pages: set[tuple[str, int]] = set()
    used, omitted = 0, 0
    for c in candidates:
        new_page = (c.doc_id, c.page) not in pages
        # a new page costs its heading and the blank line between pages too
        head = count(_heading(c.source, c.page)) + (1 if pages else 0) if new_page else 0
        cost = head + count(_line(0, c.text))
        if used + cost <= budget:
            chosen.append(c)
        elif not chosen and budget - used - head >= _MIN_TRUNCATED:
            room = budget - used - head
            cut = _truncate(c.text, lambda t: count(_line(0, t)) <= room)
            if cut is None:
                omitted += 1
                continue
            c.text, c.truncated = cut, True
            cost = head + count(_line(0, cut))
            chosen.append(c)
        else:
            omitted += 1
            continue
        used += cost
        pages.add((c.doc_id, c.page))
    return chosen, omitted


def _reading_positions(retriever: Retriever, chosen: list[Citation]) -> dict[int, tuple]:
    """Sort key per citation (by id): the pre-order index of the first stored region inside
    its box (the page's reading order), else its position from the top left."""
    from .regions.columns import RegionColumns

    keys = sorted({f"{c.doc_id}:{c.page}" for c in chosen})
    many = [k for k in keys if sum(f"{c.doc_id}:{c.page}" == k for c in chosen) > 1]
    boxes: dict[str, Any] = {}
    if many:
        try:
            for record in retriever.indexer.get(many):
                boxes[record.key] = RegionColumns.from_regions(record.regions).boxes  # (R, 4)
        except (RetrieverError, KeyError, LookupError):  # removed since: top-left order
            boxes = {}
    out: dict[int, tuple] = {}
    for c in chosen:
        position = float("inf")
        stored = boxes.get(f"{c.doc_id}:{c.page}")
        if stored is not None and len(stored):
            x0, y0, x1, y1 = c.bbox
            t = _CONTAINED_TOL
            inside = ((stored[:, 0] >= x0 - t) & (stored[:, 1] >= y0 - t)
                      & (stored[:, 2] <= x1 + t) & (stored[:, 3] <= y1 + t))
            if inside.any():
                position = float(inside.argmax())
        out[id(c)] = (position, round(c.bbox[1], 3), c.bbox[0])
    return out


def _in_prompt_order(retriever: Retriever, chosen: list[Citation]) -> list[Citation]:
    """Pages in rank order, each page's citations in reading order, numbered 1..n."""
    positions = _reading_positions(retriever, chosen)
    ordered = sorted(chosen, key=lambda c: (c.hit_rank, positions[id(c)]))
    for number, c in enumerate(ordered, start=1):
        c.number = number
    return ordered


def _attach_images(ctx: Context, mode: str, crop_dir: Path) -> None:
    renderer = PageRenderer()
    for c in ctx.citations:
        crop = renderer.crop(c.source, c.doc_id, c.page, c.bbox)
        if crop is None:
            continue
        data = png_bytes(crop)
        if mode == "base64":
            c.image_base64 = base64.b64encode(data).decode("ascii")
            continue
        # named by the region, not its number: the same region is one file whatever the
        # query, and concurrent calls write it whole (rename) instead of interleaving
        box = hashlib.sha256(repr(tuple(round(v, 6) for v in c.bbox)).encode()).hexdigest()[:12]
        crop_dir.mkdir(parents=True, exist_ok=True)
        path = crop_dir / f"{c.doc_id}-p{c.page}-{box}.png"
        partial = path.with_name(f".{path.name}.{os.getpid()}.{id(c)}.tmp")
        partial.write_bytes(data)
        os.replace(partial, path)
        c.crop_path = str(path)
    ctx.warnings.extend(renderer.warnings)


def build_context(retriever: Retriever, query: str, *, k: int = 5, budget: int = 2000,
                  tokenizer: TokenizerArg = None, images: ImagesMode = None,
                  crop_dir: str | os.PathLike[str] | None = None,
                  search_options: dict[str, Any] | None = None) -> Context:
    """See the module docstring; ``Retriever.context`` documents the arguments."""
    if images not in _IMAGES_MODES:
        raise UsageError(f"images must be 'path', 'base64' or None, not {images!r}")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise UsageError(f"budget must be a positive number of tokens, not {budget!r}")
    count = token_counter(tokenizer)  # a bad tokenizer fails before the search
    options = dict(search_options or {})
    options.setdefault("regions", True)
    if not options["regions"]:
        raise UsageError("a context is made of regions: search with regions")
    hits = retriever.search(query, k, **options)
    candidates, duplicates = _candidates(hits)
    chosen, omitted = _select(candidates, budget, count)
    ordered = _in_prompt_order(retriever, chosen)
    # the parts were counted one by one: check the whole and drop the least evident
    # regions while it is over (a tokenizer may merge pieces across a join differently)
    while ordered and count(_render(_group(ordered))) > budget:
        weakest = chosen.pop()
        ordered = _in_prompt_order(retriever, [c for c in ordered if c is not weakest])
        omitted += 1
    ctx = Context(query=query, citations=ordered, budget=budget, tokens=0,
                  tokenizer=count.name, omitted=omitted, duplicates=duplicates)
    ctx.tokens = count(ctx.prompt_text()) if ordered else 0
    if images is not None and ordered:
        target = Path(crop_dir) if crop_dir is not None else (
            retriever.root / "crops" / retriever.collection)
        _attach_images(ctx, images, target)
    return ctx


def _group(citations: list[Citation]) -> list[list[Citation]]:
    groups: dict[tuple[str, int], list[Citation]] = {}
    for c in citations:
        groups.setdefault((c.doc_id, c.page), []).append(c)
    return list(groups.values())

"""Evaluation queries and their ground truth, and the JSONL files that hold them.

One JSON object per line::

    {"text": "how do I ...", "source": "manual.pdf", "page": 12,
     "bbox": [0.12, 0.30, 0.88, 0.41], "kind": "question", "id": "q7", "split": "test"}

``source`` is an absolute path, a path relative to the queries file, or a bare file name
(matched against the base names of the indexed files). ``page`` is 1-based. ``bbox`` (the
answering block, normalized, origin top-left) is optional: without it only page metrics
are computed. ``kind`` defaults to "question"; ``split`` (e.g. dev / test) is optional and
becomes part of the report's row name. Other keys (notes, evidence) are kept but unused.
"""

from __future__ import annotations

__all__ = ["Query", "load_queries", "dump_queries", "write_queries"]

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Query:
    """A query whose answer is a known page (and box) of a known file."""

    text: str
    source: str
    page: int
    bbox: BBox | None = None
    kind: str = "question"
    id: str = ""
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def group(self) -> str:
        """Row name in the report: the kind, with the split when there is one."""
        return f"{self.kind}/{self.split}" if self.split else self.kind

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "text": self.text,
                               "source": self.source, "page": self.page}
        if self.bbox is not None:
            out["bbox"] = [round(v, 5) for v in self.bbox]
        if self.split:
            out["split"] = self.split
        out.update(self.extra)
        return out


_KNOWN = {"text", "source", "page", "bbox", "kind", "id", "split"}


def _bbox(value: Any, where: str) -> BBox | None:
    if value is None:
        return None
    ok = isinstance(value, (list, tuple)) and len(value) == 4 and all(
        isinstance(v, (int, float)) for v in value)
    if ok:
        x0, y0, x1, y1 = (float(v) for v in value)
        ok = 0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0
    if not ok:
        raise UsageError(f"{where}: bbox must be [x0, y0, x1, y1] normalized to [0, 1], "
                         f"got {value!r}")
    return (x0, y0, x1, y1)


def _resolve_source(source: str, base: Path) -> str:
    # A path that exists next to the queries file wins; otherwise keep what was written
    # (an absolute path, or a file name matched against the indexed files' names).
    path = Path(source)
    if path.is_absolute():
        return str(path)
    candidate = base / path
    return str(candidate.resolve()) if candidate.exists() else source


def _parse(obj: Any, where: str, base: Path, default_id: str) -> Query:
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: expected a JSON object")
    text, source, page = obj.get("text"), obj.get("source"), obj.get("page")
    if not isinstance(text, str) or not text.strip():
        raise UsageError(f"{where}: 'text' must be a non-empty string")
    if not isinstance(source, str) or not source.strip():
        raise UsageError(f"{where}: 'source' must name the file that answers")
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise UsageError(f"{where}: 'page' must be a page number >= 1 (1-based)")
    split = obj.get("split")
    return Query(
        text=text.strip(), source=_resolve_source(source, base), page=page,
        bbox=_bbox(obj.get("bbox"), where), kind=str(obj.get("kind") or "question"),
        id=str(obj.get("id") or default_id), split=str(split) if split else None,
        extra={k: v for k, v in obj.items() if k not in _KNOWN},
    )


def load_queries(path: str | Path) -> list[Query]:
    """Read a JSONL query file; a bad line is a UsageError naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read queries file {path}: {exc.strerror or exc}") from exc
    base = path.resolve().parent
    queries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not JSON ({exc.msg})") from exc
        queries.append(_parse(obj, where, base, f"{path.stem}:{number}"))
    if not queries:
        raise UsageError(f"queries file {path} holds no queries")
    return queries


def dump_queries(queries: Iterable[Query], *, sources_as_names: bool = False) -> str:
    """JSONL text; ``sources_as_names`` keeps only file names (portable across machines)."""
    lines = []
    for query in queries:
        obj = query.to_dict()
        if sources_as_names:
            obj["source"] = Path(query.source).name
        lines.append(json.dumps(obj, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def write_queries(path: str | Path, queries: Sequence[Query], *,
                  sources_as_names: bool = False) -> None:
    Path(path).write_text(dump_queries(queries, sources_as_names=sources_as_names),
                          encoding="utf-8")

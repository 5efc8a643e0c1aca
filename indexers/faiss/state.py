"""The live pages of one generation, laid out for lookups and search.

A ``LiveView`` is built once per generation from its (shared, memory-mapped) segments: the
live pages in a fixed order with their keys, page ids and where their vectors lie. The
float32 matrix that exact MaxSim wants is built only when exact search first asks for it,
or carried over from the previous generation's view by what the commit changed.
"""

from __future__ import annotations

__all__ = ["LiveView"]

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retriever.search.growable import append_rows
from retriever.search.ragged import page_rows
from retriever.types import MultiVector, PageRecord

from . import files
from .store import Generation, Segment


#: up to this many pages ``gather`` copies page by page (a shortlist to rerank)
_SLICED_PAGES = 4096


@dataclass
class LiveView:
    generation: Generation
    dim: int
    segments: list[Segment]
    keys: np.ndarray  # (P,) object: "doc_id:page"
    page_ids: np.ndarray  # (P,) int64
    seg: np.ndarray  # (P,) int64: which segment
    row: np.ndarray  # (P,) int64: page's row in its segment
    starts: np.ndarray  # (P,) int64: first vector row in the segment
    ends: np.ndarray  # (P,) int64
    by_key: dict[str, int]
    _order: np.ndarray = field(repr=False)  # argsort of page_ids
    #: what searches derive from this generation (exact matrix, codes), built once
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)
    _lock: Any = field(default_factory=threading.RLock, repr=False)

    @classmethod
    def build(cls, gen: Generation, dim: int, segments: Sequence[Segment]) -> LiveView:
        deleted = np.array(sorted(gen.deleted), dtype=np.int64)
        parts: dict[str, list[np.ndarray]] = {n: [] for n in ("ids", "seg", "row", "s", "e")}
        for i, s in enumerate(segments):
            alive = ~np.isin(s.page_ids, deleted) if deleted.size else np.ones(len(s), bool)
            rows = np.flatnonzero(alive)  # (live pages of s,)
            parts["ids"].append(s.page_ids[rows])
            parts["seg"].append(np.full(rows.size, i, np.int64))
            parts["row"].append(rows.astype(np.int64))
            parts["s"].append(s.offsets[rows])
            parts["e"].append(s.offsets[rows + 1])
        cat = {n: np.concatenate(v) if v else np.zeros(0, np.int64) for n, v in parts.items()}
        keys = np.array(
            [f"{segments[g].metas[r]['doc_id']}:{segments[g].metas[r]['page_number']}"
             for g, r in zip(cat["seg"].tolist(), cat["row"].tolist())], dtype=object)
        return cls(gen, dim, list(segments), keys, cat["ids"], cat["seg"], cat["row"], cat["s"],
                   cat["e"], {k: i for i, k in enumerate(keys.tolist())},
                   np.argsort(cat["ids"], kind="stable"))

    def __len__(self) -> int:
        return int(self.page_ids.size)

    @property
    def counts(self) -> np.ndarray:
        return self.ends - self.starts  # (P,)

    @property
    def stored_dtype(self) -> np.dtype:
        """The dtype the segments store vectors in (float16 unless asked otherwise)."""
        return self.segments[0].vectors.dtype if self.segments else np.dtype(np.float32)

    @property
    def n_vectors(self) -> int:
        return int(self.counts.sum())

    def positions(self, page_ids: np.ndarray) -> np.ndarray:
        """Live position of each page id; -1 for ids that are not live pages."""
        page_ids = np.asarray(page_ids, np.int64)
        if not len(self):
            return np.full(page_ids.shape, -1, np.int64)
        sorted_ids = self.page_ids[self._order]
        at = np.searchsorted(sorted_ids, page_ids).clip(max=sorted_ids.size - 1)
        hit = sorted_ids[at] == page_ids
        return np.where(hit, self._order[at], -1)

    def gather(self, positions: np.ndarray, *,
               dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of these live pages back to back -> (vectors (N, d), offsets).

        ``dtype``: float32 by default; None keeps the stored dtype (a float16 copy is a
        tenth of the cost of converting on the host, and the torch kernels convert each
        block as they score it). A few pages are copied slice by slice, each a contiguous
        run of its segment; many through one fancy-indexed read per segment.
        """
        positions = np.asarray(positions, np.int64)
        counts = self.counts[positions]  # (C,)
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)  # (C+1,)
        out = np.empty((int(offsets[-1]), self.dim), dtype or self.stored_dtype)  # (N, d)
        if positions.size <= _SLICED_PAGES:
            self._announce(positions)
            for at, p in enumerate(positions.tolist()):
                out[offsets[at]:offsets[at + 1]] = (
                    self.segments[self.seg[p]].vectors[self.starts[p]:self.ends[p]])
            return out, offsets
        segs = self.seg[positions]
        for g in np.unique(segs).tolist():  # one fancy-indexed read per segment
            sel = np.flatnonzero(segs == g)
            c = counts[sel]
            within = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
            src = np.repeat(self.starts[positions[sel]], c) + within
            out[np.repeat(offsets[sel], c) + within] = self.segments[g].vectors[src]
        return out, offsets

    def _announce(self, positions: np.ndarray) -> None:
        """Read-ahead hints for the rows of ``positions``, per segment, before they are
        copied: a shortlist's pages are scattered over the files, and faulting them in one
        by one was most of a search whose pages were not cached."""
        segs = self.seg[positions]
        for g in np.unique(segs).tolist():
            sel = positions[segs == g]
            files.will_read(self.segments[g].vectors,
                            zip(self.starts[sel].tolist(), self.ends[sel].tolist()))

    def carry_exact(self, old: LiveView) -> bool:
        """Start from ``old``'s float32 matrix (if it built one) moved by what changed:
        the added pages appended in place when nothing was removed, the kept rows copied
        once otherwise; -> whether it did. Saves converting every stored page again."""
        held = old.built("exact")
        step = self.continuation(old) if held is not None else None
        if step is None:
            return False
        kept, added = step
        vectors, offsets = held
        tail, tail_offsets = self.gather(added)  # (M, d), (A+1,)
        if kept.size == len(old):
            joined, spare = append_rows(vectors, old.built("exact-spare"), tail)
            head_offsets = offsets
        else:
            counts = np.diff(offsets)[kept]
            joined = np.concatenate([vectors[page_rows(offsets, kept)], tail])
            head_offsets, spare = np.concatenate(([0], np.cumsum(counts))), None
        new_offsets = np.concatenate([head_offsets, head_offsets[-1] + tail_offsets[1:]])
        self.seed("exact", (joined, new_offsets.astype(np.int64)))
        if spare is not None:
            self.seed("exact-spare", spare)
        return True

    def exact_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """Every live page's vectors as float32, page after page (cached per view).

        float32, not the stored float16: numpy's half-to-float cast inside the scoring loop
        costs more than the matmul itself.
        """
        return self.cached("exact", lambda: self.gather(np.arange(len(self))))

    def has_exact(self) -> bool:
        return "exact" in self._cache

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """``build()`` once per view and key (the view's generation never changes)."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    def continuation(self, old: LiveView) -> tuple[np.ndarray, np.ndarray] | None:
        """How this view follows ``old``: (positions in ``old`` of the pages kept, in
        order; positions here of the pages added), when this view lists the kept pages
        first in ``old``'s order, then the added ones (what appends, deletes and
        replacements leave); ``None`` otherwise (a merge of segments reorders)."""
        where = old.positions(self.page_ids)  # (P',) position in ``old``, -1: added since
        kept = int((where >= 0).sum())
        if (where[kept:] >= 0).any() or (np.diff(where[:kept]) <= 0).any():
            return None
        return where[:kept], np.arange(kept, len(self), dtype=np.int64)

    def built(self, key: Any) -> Any | None:
        """What ``cached`` holds for ``key``, without building it."""
        with self._lock:
            return self._cache.get(key)

    def built_of(self, kind: str) -> dict[Any, Any]:
        """What ``cached`` holds under the keys ``(kind, ...)``, without building any."""
        with self._lock:
            return {key: value for key, value in self._cache.items()
                    if isinstance(key, tuple) and key and key[0] == kind}

    def seed(self, key: Any, value: Any) -> None:
        """Hold ``value`` for ``key`` (derived from an earlier view by what changed)."""
        with self._lock:
            self._cache.setdefault(key, value)

    def record(self, position: int) -> PageRecord:
        g, r = int(self.seg[position]), int(self.row[position])
        s = self.segments[g]
        a, b = int(self.starts[position]), int(self.ends[position])
        meta = s.metas[r]
        emb = MultiVector(np.array(s.vectors[a:b]), np.array(s.boxes[a:b]), check_norm=False,
                          counts=meta.get("counts"))
        return PageRecord(
            doc_id=meta["doc_id"], source=meta["source"], page_number=int(meta["page_number"]),
            width=int(meta["width"]), height=int(meta["height"]), embedding=emb,
            regions=s.regions[r], has_text_layer=bool(meta["has_text_layer"]),
            paths=_paths(meta))

    def doc_ids(self) -> list[str]:
        return [self.segments[g].metas[r]["doc_id"]
                for g, r in zip(self.seg.tolist(), self.row.tolist())]

    def documents(self) -> dict[str, str]:
        return {self.segments[g].metas[r]["doc_id"]: self.segments[g].metas[r]["source"]
                for g, r in zip(self.seg.tolist(), self.row.tolist())}

    def paths(self) -> dict[str, list[str]]:
        return {self.segments[g].metas[r]["doc_id"]: list(_paths(self.segments[g].metas[r]))
                for g, r in zip(self.seg.tolist(), self.row.tolist())}


def _paths(meta: dict[str, Any]) -> tuple[str, ...]:
    """Every path of the page's document (segments written before paths: its source)."""
    return tuple(meta.get("paths") or (meta["source"],))

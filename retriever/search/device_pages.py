"""Pages held on an accelerator: exact and two-stage MaxSim in half precision through torch.

On a GPU, MaxSim over a collection is bound by memory bandwidth: every stored vector is
read once per batch of queries, and the similarity matmul, the per-page maximum and the
sum are cheap beside that read. So the pages live on the device in float16 (or bfloat16,
256 bytes per 128-d vector), uploaded once; a search moves only the queries in and the
best ``k`` scores out. 100k ColPali pages are 26 GB, which one 80+ GB card holds.

Layout. Pages are uploaded in blocks ``(B, L, d)``: ``B`` pages padded to the block's
longest page ``L``. Padding repeats the page's own last row, and a repeated row never
changes a maximum, so the kernel needs no mask. The queries of a batch are padded with
zero rows, which add exactly 0 to every page's sum. A page without vectors scores
``-inf``.

Storage (``DeviceStore``) is append-only and shared between views; a view
(``DevicePages``) is the store plus the slots of its live pages, in the collection's
order, and never changes. A commit that adds pages uploads only those
(``DevicePages.updated``); deleted pages simply leave the next view's slots, their rows
stay on the device until more than half of the store is dead, when the caller builds a
fresh one. A search that started on an older view keeps its consistent picture.

Two-stage, when the store keeps centroids (``retriever.search.prefilter.page_centroids``,
computed on the host at upload): stage 1 scores every page's ``m`` centroids (``m / L`` of
the exact work), stage 2 scores the ``rerank`` best of them per query exactly.
"""

from __future__ import annotations

__all__ = ["DEVICE_DTYPES", "DeviceStore", "DevicePages", "ranked_by_key", "resolve_device"]

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, UsageError
from ..protocols import ScoredPage
from .prefilter import page_centroids
from .ragged import check_offsets
from .scoring import rank_pages

DEVICE_DTYPES = ("float16", "bfloat16", "float32")
#: similarities one kernel call materialises at most (elements of the (rows, queries)
#: matrix): 2^28 half-precision values are 512 MB of scratch, small beside the pages
_MAX_SIMILARITIES = 1 << 28
#: pages uploaded per block: bounds the host's padded float32 copy during an upload
_UPLOAD_PAGES = 2048
#: a view is rebuilt rather than carried when fewer than this share of the store is live
_MIN_LIVE_SHARE = 0.5

Fetch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("searching on a device needs torch",
                                     hint="pip install torch") from exc
    return torch


def resolve_device(device: str, dtype: str | None = None) -> tuple[Any, Any]:
    """``("cuda:1", None)`` -> (torch.device, torch dtype); half precision on an accelerator
    by default, float32 on the CPU (whose half-precision matmuls are slow). A name torch
    does not know, or a device this machine lacks, is a UsageError saying so."""
    torch = _torch()
    try:
        where = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UsageError(f"unknown device {device!r}",
                         hint="use cpu, cuda or cuda:N (a torch device name)") from exc
    if where.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} is not available: torch sees no CUDA device here",
                         hint="search without a device, or on a machine with a GPU")
    if where.type == "cuda" and (where.index or 0) >= torch.cuda.device_count():
        raise UsageError(f"device {device!r} is not available: this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    name = dtype or ("float32" if where.type == "cpu" else "float16")
    if name not in DEVICE_DTYPES:
        raise UsageError(f"unknown device dtype {name!r}", hint=f"use one of {DEVICE_DTYPES}")
    return where, getattr(torch, name)


def _padded(vectors: np.ndarray, offsets: np.ndarray, width: int) -> np.ndarray:
    """Pages (N, d) + offsets (P+1,) -> (P, width, d) in the input's float dtype: each
    page's rows, then its last row repeated (a page without rows gets zeros; it is masked
    as empty). Pages that all have ``width`` rows are a reshape, not a copy."""
    lengths = np.diff(offsets)  # (P,)
    dim = vectors.shape[1]
    if (lengths == width).all() and offsets[0] == 0:
        return np.ascontiguousarray(vectors[:offsets[-1]]).reshape(-1, width, dim)
    cols = np.minimum(np.arange(width)[None, :], np.maximum(lengths, 1)[:, None] - 1)
    rows = offsets[:-1, None] + cols  # (P, width)
    if vectors.shape[0] == 0:
        return np.zeros((*rows.shape, dim), np.float32)
    out = np.asarray(vectors[rows.clip(max=vectors.shape[0] - 1).ravel()])
    out = out.reshape(*rows.shape, dim)
    out[lengths == 0] = 0.0
    return out


def _upload(array: np.ndarray, device: Any, dtype: Any) -> Any:
    """Host array -> device tensor of ``dtype``: moved as it is, converted there (a
    float16 host copy crosses the bus at half the bytes of a float32 one)."""
    return _torch().from_numpy(array).to(device).to(dtype)


def _page_range(vectors: np.ndarray, offsets: np.ndarray, start: int,
                stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Pages ``start:stop`` of (vectors, offsets) -> their rows and rebased offsets."""
    return vectors[offsets[start]:offsets[stop]], offsets[start:stop + 1] - offsets[start]


@dataclass(frozen=True)
class _Block:
    first: int  # the store slot of the block's first page
    vectors: Any  # (B, L, d) on the device
    centroids: Any | None  # (B, m, d) on the device, when the store keeps centroids
    empty: Any  # (B,) bool on the device: pages without vectors


def _maxsim(pages: Any, queries: Any) -> Any:
    """pages (B, L, d), queries (Q, Lq, d) -> (B, Q) float32 MaxSim, in chunks of pages
    small enough for the similarity scratch."""
    torch = _torch()
    n, width, dim = pages.shape
    n_queries, q_len, _ = queries.shape
    flat_q = queries.reshape(-1, dim).T  # (d, Q * Lq)
    step = max(1, _MAX_SIMILARITIES // max(width * flat_q.shape[1], 1))
    out = torch.empty((n, n_queries), dtype=torch.float32, device=pages.device)
    for start in range(0, n, step):
        part = pages[start:start + step]  # (b, L, d)
        sims = part.reshape(-1, dim) @ flat_q  # (b * L, Q * Lq)
        best = sims.view(part.shape[0], width, -1).amax(dim=1)  # (b, Q * Lq)
        out[start:start + step] = best.view(-1, n_queries, q_len).float().sum(dim=2)
    return out


class DeviceStore:
    """Append-only blocks of pages on one torch device (see the module docstring)."""

    def __init__(self, dim: int, device: str = "cuda", dtype: str | None = None, *,
                 centroids: int | None = None) -> None:
        self.dim = dim
        self.device, self.dtype = resolve_device(device, dtype)
        self.centroids = centroids
        self._blocks: list[_Block] = []
        self._slots = 0
        self._lock = threading.Lock()  # appends only: searches read a snapshot of blocks

    @property
    def n_slots(self) -> int:
        return self._slots

    @property
    def nbytes(self) -> int:
        """Device memory held by the pages (and centroids)."""
        return sum(t.element_size() * t.nelement() for b in self._blocks
                   for t in (b.vectors, b.centroids) if t is not None)

    def append(self, vectors: np.ndarray, offsets: np.ndarray, *,
               centroids: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Upload pages ``vectors`` (N, d) with ``offsets`` (P+1,) -> their slots (P,).

        ``centroids``: the pages' ``page_centroids`` when the caller has them already (a
        store that keeps centroids computes them otherwise, on the host).
        """
        torch = _torch()
        offsets = check_offsets(offsets, np.asarray(vectors).shape[0])
        if np.asarray(vectors).shape[1:] != (self.dim,):
            raise UsageError(f"pages have dim {np.asarray(vectors).shape[1:]}, the store "
                             f"holds dim {self.dim}")
        n_pages = offsets.size - 1
        blocks = []
        for start in range(0, n_pages, _UPLOAD_PAGES):
            stop = min(start + _UPLOAD_PAGES, n_pages)
            rows, sub = _page_range(vectors, offsets, start, stop)
            width = max(int(np.diff(sub).max()), 1)
            pages = _upload(_padded(rows, sub, width), self.device, self.dtype)
            kept = None
            if self.centroids:
                cents, cent_offsets = (
                    page_centroids(rows, sub, self.centroids) if centroids is None
                    else _page_range(*centroids, start, stop))
                kept = _upload(_padded(cents, cent_offsets, self.centroids), self.device,
                               self.dtype)
            empty = torch.from_numpy(np.diff(sub) == 0).to(self.device)
            blocks.append((pages, kept, empty))
        with self._lock:
            first = self._slots
            for pages, kept, empty in blocks:
                self._blocks.append(_Block(self._slots, pages, kept, empty))
                self._slots += pages.shape[0]
        return np.arange(first, first + n_pages, dtype=np.int64)

    def _queries(self, queries: Sequence[np.ndarray]) -> Any:
        """Queries -> (Q, Lq, d) on the device, zero-padded to the longest."""
        torch = _torch()
        q_len = max([len(q) for q in queries] + [1])
        out = np.zeros((len(queries), q_len, self.dim), np.float32)
        for i, q in enumerate(queries):
            out[i, :len(q)] = q
        return torch.from_numpy(out).to(self.device, self.dtype)

    def _snapshot(self) -> list[_Block]:
        with self._lock:
            return list(self._blocks)

    def score_all(self, queries: Any, *, coarse: bool = False) -> Any:
        """MaxSim of device queries (Q, Lq, d) against every slot -> (slots, Q) float32;
        ``coarse``: against the pages' centroids instead of their vectors."""
        torch = _torch()
        parts = []
        for block in self._snapshot():
            scores = _maxsim(block.centroids if coarse else block.vectors, queries)
            parts.append(scores.masked_fill(block.empty[:, None], float("-inf")))
        if not parts:
            return torch.empty((0, queries.shape[0]), dtype=torch.float32, device=self.device)
        return torch.cat(parts)

    def score_slots(self, queries: Any, slots: np.ndarray) -> Any:
        """Exact MaxSim of device queries against the pages in ``slots`` -> (S, Q)."""
        torch = _torch()
        blocks = self._snapshot()
        firsts = np.array([b.first for b in blocks], np.int64)
        which = np.searchsorted(firsts, slots, side="right") - 1  # (S,) block of each slot
        out = torch.empty((slots.size, queries.shape[0]), dtype=torch.float32,
                          device=self.device)
        for b in np.unique(which).tolist():
            sel = np.flatnonzero(which == b)
            local = torch.from_numpy(slots[sel] - firsts[b]).to(self.device)
            block = blocks[b]
            scores = _maxsim(block.vectors.index_select(0, local), queries)
            scores = scores.masked_fill(block.empty.index_select(0, local)[:, None],
                                        float("-inf"))
            out[torch.from_numpy(sel).to(self.device)] = scores
        return out


class DevicePages:
    """One collection view's pages on a device: the store and the slots of its live pages,
    position ``i`` of the view at ``slots[i]``. Never changes; ``updated`` makes the next."""

    def __init__(self, store: DeviceStore, slots: np.ndarray) -> None:
        self.store = store
        self.slots = np.asarray(slots, np.int64)
        self._slots_on_device = _torch().from_numpy(self.slots).to(store.device)

    @classmethod
    def build(cls, fetch: Fetch, n_pages: int, *, dim: int, device: str = "cuda",
              dtype: str | None = None, centroids: int | None = None) -> DevicePages:
        """Upload ``n_pages`` pages, read in chunks through ``fetch(positions) ->
        (vectors (N, d), offsets)`` so the host never holds them all at once."""
        store = DeviceStore(dim, device, dtype, centroids=centroids)
        slots = [store.append(*fetch(np.arange(start, min(start + _UPLOAD_PAGES, n_pages))))
                 for start in range(0, n_pages, _UPLOAD_PAGES)]
        return cls(store, np.concatenate(slots) if slots else np.zeros(0, np.int64))

    def __len__(self) -> int:
        return int(self.slots.size)

    def updated(self, kept: np.ndarray, fetch: Fetch, added: np.ndarray) -> DevicePages | None:
        """The view after a commit: this view's pages at positions ``kept`` (in order),
        then the pages at the new view's positions ``added`` (uploaded through ``fetch``);
        None when so little of the store would stay live that a fresh build is better."""
        live = len(kept) + len(added)
        if live < _MIN_LIVE_SHARE * (self.store.n_slots + len(added)):
            return None
        new = [self.store.append(*fetch(added[start:start + _UPLOAD_PAGES]))
               for start in range(0, len(added), _UPLOAD_PAGES)]
        return DevicePages(self.store, np.concatenate([self.slots[kept], *new]))

    def search(self, queries: Sequence[np.ndarray], k: int, *,
               rerank: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Best ``k`` view positions per query, best first -> [(positions, scores)].

        ``rerank`` (a store with centroids): the pages scored exactly per query, picked by
        their centroids' MaxSim; None scores every page exactly.
        """
        torch = _torch()
        if not queries:
            return []
        k = min(k, len(self))
        if k <= 0:
            return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in queries]
        q = self.store._queries(queries)
        with torch.inference_mode():
            if rerank is None or rerank >= len(self) or not self.store.centroids:
                scores = self.store.score_all(q).index_select(0, self._slots_on_device)
                best, at = scores.topk(k, dim=0)  # (k, Q)
                best, at = best.cpu().numpy(), at.cpu().numpy()  # one transfer each
                return [(at[:, j], best[:, j]) for j in range(len(queries))]
            return self._two_stage(q, k, max(rerank, k))

    def _two_stage(self, q: Any, k: int, rerank: int) -> list[tuple[np.ndarray, np.ndarray]]:
        coarse = self.store.score_all(q, coarse=True).index_select(0, self._slots_on_device)
        picks = coarse.topk(rerank, dim=0).indices.cpu().numpy()  # (rerank, Q) positions
        union, where = np.unique(picks, return_inverse=True)  # (U,), (rerank * Q,)
        exact = self.store.score_slots(q, self.slots[union])  # (U, Q)
        where = _torch().from_numpy(where.reshape(picks.shape)).to(self.store.device)
        found = []
        for j in range(q.shape[0]):
            scores = exact[where[:, j], j]  # (rerank,) this query's own candidates
            best, at = scores.topk(k)
            found.append((union[where[:, j][at].cpu().numpy()], best.cpu().numpy()))
        return found


def ranked_by_key(found: Sequence[tuple[np.ndarray, np.ndarray]],
                  keys: np.ndarray) -> list[list[ScoredPage]]:
    """``DevicePages.search`` results -> scored page keys per query, ranked as the host
    kernels rank them (``scoring.rank_pages``: equal scores in key order, pages without
    vectors left out)."""
    return [rank_pages(scores, keys[positions], len(positions))
            for positions, scores in found]

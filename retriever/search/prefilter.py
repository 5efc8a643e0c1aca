"""A few centroids per page: the coarse stage that lets two-stage search skip most pages.

A full scan of codes costs time linear in the number of stored vectors (about 1,000 per
ColPali page); at 100k pages even binary codes take a sizeable fraction of a second per
query. Most of a page's vectors are near-duplicates (background patches, repeated
textures), so a handful of spherical k-means centroids summarises a page well enough to
rank it coarsely: MaxSim of the query against every page's ``m`` centroids (``m / 1030`` of
the work of a full scan) keeps the few thousand pages worth looking at, and the codes and
the exact vectors then sort those out.

Centroids are computed per page at indexing time, deterministically (farthest-point
initialisation, a few Lloyd steps on an evenly strided sample of at most 256 of the page's
vectors), and stored as float16, ``m * d * 2`` bytes per page. Pages with at most ``m``
vectors keep their vectors as their centroids.

Measured on the structured benchmark pages (3,000 pages, 16 queries): 16 centroids keep
95-100% of the exact top-10 within the best 1-4% of pages; 8 do not (the background
directions take most of them: 78-86%). Clustering a 256-vector sample instead of all 1,030
costs no recall and a quarter of the time (about 0.4 ms per page).
"""

from __future__ import annotations

__all__ = ["DEFAULT_CENTROIDS", "DEFAULT_ITERATIONS", "DEFAULT_SAMPLE", "page_centroids"]

import numpy as np

from ..errors import RetrieverError
from .ragged import check_offsets

DEFAULT_CENTROIDS = 16
DEFAULT_ITERATIONS = 2
DEFAULT_SAMPLE = 256  # vectors per page that the clustering looks at, at most
_BATCH_ROWS = 1 << 16  # pages of one length clustered together, about this many rows


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def _kmeans(x: np.ndarray, m: int, iters: int) -> np.ndarray:
    """Spherical k-means of each page of a batch: x (B, n, d), n > m -> (B, m, d)."""
    b, n, _ = x.shape
    batch = np.arange(b)
    # farthest-point start from the page's mean direction: with many near-identical
    # background vectors a random start would spend most centroids on one of them
    centres = [_unit(x.mean(axis=1))]  # [(B, d)]
    closest = np.einsum("bnd,bd->bn", x, centres[0])  # (B, n) best similarity so far
    for _ in range(m - 1):
        far = closest.argmin(axis=1)  # (B,)
        pick = x[batch, far]  # (B, d)
        centres.append(pick)
        np.maximum(closest, np.einsum("bnd,bd->bn", x, pick), out=closest)
    c = np.stack(centres, axis=1)  # (B, m, d)
    for _ in range(iters):
        assign = np.matmul(x, c.transpose(0, 2, 1)).argmax(axis=2)  # (B, n)
        onehot = (assign[:, :, None] == np.arange(m)).astype(np.float32)  # (B, n, m)
        sums = np.matmul(onehot.transpose(0, 2, 1), x)  # (B, m, d)
        used = onehot.sum(axis=1) > 0  # (B, m) an empty cluster keeps its old centre
        c = np.where(used[:, :, None], _unit(sums), c)
    return c


def page_centroids(
    vectors: np.ndarray,
    offsets: np.ndarray,
    m: int = DEFAULT_CENTROIDS,
    *,
    iters: int = DEFAULT_ITERATIONS,
    sample: int = DEFAULT_SAMPLE,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``m`` unit centroids per page -> (centroids (C, d) float16, offsets (P+1,)).

    ``vectors`` (N, d) and ``offsets`` (P+1,) as everywhere in ``retriever``; a page keeps
    ``min(m, n_p)`` centroids, so a page without vectors keeps none.
    """
    if m < 1:
        raise RetrieverError(f"centroids per page must be at least 1, got {m}")
    offsets = check_offsets(offsets, np.asarray(vectors).shape[0])
    lengths = np.diff(offsets)  # (P,)
    kept = np.minimum(lengths, m)  # (P,)
    out_offsets = np.concatenate(([0], np.cumsum(kept))).astype(np.int64)  # (P+1,)
    dim = np.asarray(vectors).shape[1]
    out = np.empty((int(out_offsets[-1]), dim), np.float16)  # (C, d)
    small = np.flatnonzero((lengths > 0) & (lengths <= m))
    for p in small:  # few vectors: they are their own centroids
        out[out_offsets[p] : out_offsets[p + 1]] = vectors[offsets[p] : offsets[p + 1]]
    big = np.flatnonzero(lengths > m)
    for n in np.unique(lengths[big]):
        same = big[lengths[big] == n]  # pages of one length cluster as one batch
        # an evenly strided sample, never fewer rows than centroids
        picks = np.arange(0, n, max(1, min(-(-int(n) // max(sample, 1)), int(n) // m)))
        step = max(1, _BATCH_ROWS // picks.size)
        for start in range(0, same.size, step):
            pages = same[start : start + step]
            rows = offsets[pages][:, None] + picks  # (B, s)
            x = np.asarray(vectors[rows.ravel()], dtype=np.float32).reshape(
                len(pages), picks.size, dim)
            c = _kmeans(x, m, iters)  # (B, m, d)
            dest = out_offsets[pages][:, None] + np.arange(m)  # (B, m)
            out[dest.ravel()] = c.reshape(-1, dim)
    return out, out_offsets

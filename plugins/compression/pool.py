"""``pool``: hierarchical token pooling (Ward clustering of a page's vectors).

Vectors are L2-normalized, so Euclidean distance orders pairs exactly as cosine
similarity does; Ward linkage on the vectors themselves (scipy, from a condensed
distance matrix made with one matrix product) cuts the page into ``n / factor``
clusters of similar vectors. ``spatial`` > 0 adds the box centres, scaled by it, as two
more coordinates, so that clusters also stay together on the page (tighter union boxes
for grounding) at some cost in how alike their members are.
"""

from __future__ import annotations

__all__ = ["WardPool", "ward_labels"]

import math

import numpy as np

from retriever.compression import is_local, merged
from retriever.types import MultiVector


def ward_labels(points: np.ndarray, clusters: int) -> np.ndarray:
    """(m,) cluster id (0-based) of each row of ``points`` (m, f), ``clusters`` of them."""
    from scipy.cluster.hierarchy import fcluster, linkage

    points = np.asarray(points, np.float64)
    squared = (points * points).sum(axis=1)  # (m,)
    gram = points @ points.T  # (m, m)
    dist = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * gram, 0.0))
    upper = np.triu_indices(len(points), k=1)
    tree = linkage(dist[upper], method="ward")  # condensed: row-major upper triangle
    return fcluster(tree, t=clusters, criterion="maxclust").astype(np.int64) - 1


class WardPool:
    name = "pool"

    def __init__(self, factor: int = 3, spatial: float = 0.0, min_keep: int = 16) -> None:
        self.factor = int(factor)
        self.spatial = float(spatial)
        self.min_keep = int(min_keep)

    def compress(self, mv: MultiVector) -> MultiVector:
        local = np.flatnonzero(is_local(mv.boxes))
        clusters = max(self.min_keep, math.ceil(local.size / self.factor))
        if local.size <= clusters:
            return mv
        points = mv.vectors[local].astype(np.float32)  # (m, d)
        if self.spatial > 0:
            boxes = mv.boxes[local]
            centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2,
                                (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)  # (m, 2)
            points = np.concatenate([points, self.spatial * centres], axis=1)
        labels = np.full(mv.n, -1, np.int64)  # page-level vectors stay alone
        labels[local] = ward_labels(points, clusters)
        return merged(mv, labels)

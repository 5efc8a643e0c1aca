"""``pool``: hierarchical token pooling (agglomerative clustering of a page's vectors).

Vectors are L2-normalized, so Euclidean distance orders pairs exactly as cosine
similarity does; scipy's linkage on a condensed distance matrix (made with one matrix
product) cuts the page into ``n / factor`` clusters of similar vectors.

The default linkage is ``average``, not Ward: Ward minimizes the spread of each cluster
weighted by its size, so it spends vectors on well-populated directions (background
paper) that MaxSim needs only once; average linkage caps how far apart members may be on
average, whatever their number, which kept the best region of a page far more often at
the same recall (benchmarks/compression.py: top-region agreement 0.94 against 0.81 for
Ward on the structured pages). ``spatial`` > 0 adds the box centres, scaled by it, as two
more coordinates, so that clusters also stay together on the page.

With ``within_regions`` (the default) the page's paragraphs bound the clusters: a vector
of one paragraph is never averaged with a vector of another unless the budget leaves no
other way, because grounding scores each paragraph by the vectors inside it and a vector
straddling two paragraphs blurs which one answered. The budget also grows to one vector
per paragraph where ``n / factor`` is fewer (at most twice the budget), so a page of many
short paragraphs keeps one vector for each.
"""

from __future__ import annotations

__all__ = ["AgglomerativePool", "cluster_labels", "first_merges"]

import math
from collections.abc import Sequence

import numpy as np

from retriever.compression import is_local, merged, region_of
from retriever.types import MultiVector, Region


def cluster_labels(points: np.ndarray, clusters: int, method: str = "average",
                   groups: np.ndarray | None = None) -> np.ndarray:
    """(m,) cluster id (0-based) of each row of ``points`` (m, f): exactly
    ``min(clusters, m)`` clusters.

    ``groups`` (m,) ints: rows of different groups are set further apart than any two rows
    are, so the linkage joins across groups (still by similarity) only once every group
    is one cluster, that is only when ``clusters`` is fewer than the groups.
    """
    from scipy.cluster.hierarchy import linkage

    points = np.asarray(points, np.float64)
    squared = (points * points).sum(axis=1)  # (m,)
    gram = points @ points.T  # (m, m)
    dist = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2 * gram, 0.0))
    if groups is not None:
        groups = np.asarray(groups)
        dist += (groups[:, None] != groups[None, :]) * (dist.max() + 1.0)
    upper = np.triu_indices(len(points), k=1)
    tree = linkage(dist[upper], method=method)  # condensed: row-major upper triangle
    return first_merges(tree, len(points) - min(clusters, len(points)))


def first_merges(tree: np.ndarray, merges: int) -> np.ndarray:
    """(m,) cluster id (0-based) of each leaf after the first ``merges`` joins of a
    linkage ``tree`` (m - 1, 4).

    The tree's joins come in order of distance, so this is its cut at ``m - merges``
    clusters. scipy's ``fcluster(maxclust)`` cuts at a distance instead, and returns
    fewer clusters where joins tie (vectors all equally far apart, or pairs of
    paragraphs set apart by the same amount); ``cut_tree`` is exact but ten times
    slower than the linkage on a page.
    """
    m = len(tree) + 1
    parent = np.arange(2 * m - 1)  # node -> the node it was joined into (itself if not)
    joined = m + np.arange(merges)
    parent[tree[:merges, 0].astype(np.int64)] = joined
    parent[tree[:merges, 1].astype(np.int64)] = joined
    while True:  # pointer jumping: every leaf to its root in log(depth) rounds
        hop = parent[parent]
        if np.array_equal(hop, parent):
            break
        parent = hop
    return np.unique(parent[:m], return_inverse=True)[1].astype(np.int64)


class AgglomerativePool:
    name = "pool"
    #: ``compress`` takes the page's regions (``retriever.compression.compress_all``)
    uses_regions = True

    def __init__(self, factor: int = 3, spatial: float = 0.0, linkage: str = "average",
                 min_keep: int = 16, within_regions: bool = True) -> None:
        self.factor = int(factor)
        self.spatial = float(spatial)
        self.linkage = linkage
        self.min_keep = int(min_keep)
        self.within_regions = bool(within_regions)

    def compress(self, mv: MultiVector,
                 regions: Sequence[Region] | None = None) -> MultiVector:
        local = np.flatnonzero(is_local(mv.boxes))
        clusters = max(self.min_keep, math.ceil(local.size / self.factor))
        groups = None
        if self.within_regions and regions:
            groups = region_of(mv.boxes[local], regions)  # (m,)
            present = np.unique(groups).size
            clusters = max(clusters, min(present, 2 * clusters))
        if local.size <= clusters:
            return mv
        points = mv.vectors[local].astype(np.float32)  # (m, d)
        if self.spatial > 0:
            boxes = mv.boxes[local]
            centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2,
                                (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)  # (m, 2)
            points = np.concatenate([points, self.spatial * centres], axis=1)
        labels = np.full(mv.n, -1, np.int64)  # page-level vectors stay alone
        labels[local] = cluster_labels(points, clusters, self.linkage, groups)
        return merged(mv, labels)

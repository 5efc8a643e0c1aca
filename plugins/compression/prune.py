"""``prune``: background vectors fused into one (EViT-style token reorganization).

On a document page most patch vectors see blank paper or margins: many near-identical
vectors, which pull the page's mean vector towards them. Vectors are ranked by their
similarity to that dominant direction; the ``1/factor`` least like it are kept as they
are, and the rest are fused into one vector (their count-weighted mean, the union box),
so a query about the background still finds something and the counts still add up.

Given the page's regions (``within_regions``, the default), a vector whose box overlaps
none of them (blank paper, a margin) is fused before any vector inside a paragraph,
whatever its direction: the layout says what is background where one dominant direction
cannot (a page whose blank paper, rules and shading point several ways).
"""

from __future__ import annotations

__all__ = ["BackgroundPrune"]

import math
from collections.abc import Sequence

import numpy as np

from retriever.compression import is_local, merged, region_of
from retriever.types import MultiVector, Region


class BackgroundPrune:
    name = "prune"
    #: ``compress`` takes the page's regions (``retriever.compression.compress_all``)
    uses_regions = True

    def __init__(self, factor: int = 3, min_keep: int = 16,
                 within_regions: bool = True) -> None:
        self.factor = int(factor)
        self.min_keep = int(min_keep)
        self.within_regions = bool(within_regions)

    def compress(self, mv: MultiVector,
                 regions: Sequence[Region] | None = None) -> MultiVector:
        local = np.flatnonzero(is_local(mv.boxes))
        keep = max(self.min_keep, math.ceil(local.size / self.factor))
        if local.size <= keep + 1:  # fusing fewer than two vectors saves nothing
            return mv
        vectors = mv.vectors[local].astype(np.float32)  # (m, d)
        weights = mv.weights()[local]
        dominant = (vectors * weights[:, None]).sum(axis=0)  # (d,)
        dominant /= max(float(np.linalg.norm(dominant)), 1e-12)
        likeness = vectors @ dominant  # (m,)
        blank = np.zeros(local.size, bool)  # (m,) outside every paragraph
        if self.within_regions and regions:
            blank = region_of(mv.boxes[local], regions) < 0
        # the ``keep - 1`` least like the background stay (vectors on blank paper last);
        # the fused one is the last slot
        kept = local[np.lexsort((likeness, blank))[:keep - 1]]
        labels = np.full(mv.n, -1, np.int64)  # page-level vectors stay alone
        labels[local] = 0  # one background group ...
        labels[kept] = np.arange(1, kept.size + 1)  # ... and each kept vector its own
        return merged(mv, labels)

"""Built-in token compressors: ``merge`` (windows of the patch grid), ``pool`` (hierarchical
clustering) and ``prune`` (background vectors fused into one).

They register through ``register_compressors``, the hook a third-party compressor uses,
and work on any multi-vector encoder's pages: each keeps page-level (whole-page box)
vectors as they are and gives every vector it makes the union of its members' boxes and
their count (``retriever.compression.merged``). ``retriever index --compress pool:3``.
"""

from __future__ import annotations

__all__ = ["register_compressors"]

from typing import Any

from retriever.hookspecs import hookimpl
from retriever.options import Option
from retriever.specs import CompressorSpec

MIN_KEEP = Option("min_keep", int, 16, "never fewer vectors per page than this (a short "
                  "page is left as it is)", minimum=1)


def _merge(**options: Any):
    from .merge import WindowMerge

    return WindowMerge(**options)


def _pool(**options: Any):
    from .pool import AgglomerativePool

    return AgglomerativePool(**options)


def _prune(**options: Any):
    from .prune import BackgroundPrune

    return BackgroundPrune(**options)


@hookimpl
def register_compressors(register) -> None:
    register(CompressorSpec(
        name="merge", factory=_merge,
        description="LLaVA-style windowed merging: the mean of each FACTOR x FACTOR window "
                    "of the encoder's grid (about 1/FACTOR^2 of the vectors, layout kept)",
        options=(Option("factor", int, 2, "window side, in vectors of the grid", minimum=2),
                 MIN_KEEP)))
    register(CompressorSpec(
        name="pool", factory=_pool,
        description="hierarchical pooling: clusters of similar vectors (average linkage), "
                    "1/FACTOR of the vectors (token pooling for ColPali)",
        options=(Option("factor", int, 3, "vectors per cluster, on average", minimum=2),
                 Option("spatial", float, 0.0, "weight of the vectors' positions in the "
                        "clustering (0: by similarity alone)", minimum=0.0),
                 Option("linkage", str, "average", "how clusters are joined (scipy "
                        "linkage on the distance matrix)",
                        choices=("average", "ward", "complete", "weighted")),
                 Option("within_regions", bool, True, "keep each cluster inside one of "
                        "the page's paragraphs while the budget allows, and keep at least "
                        "one vector per paragraph (up to twice the budget)",
                        legacy=False),  # collections pooled before it existed
                 MIN_KEEP)))
    register(CompressorSpec(
        name="prune", factory=_prune,
        description="background pruning: keeps the 1/FACTOR of the vectors least like the "
                    "page's dominant direction and fuses the rest into one",
        options=(Option("factor", int, 3, "1/FACTOR of the vectors are kept", minimum=2),
                 Option("within_regions", bool, True, "fuse the vectors outside every one "
                        "of the page's paragraphs (blank paper) before any inside one",
                        legacy=False),  # collections pruned before it existed
                 MIN_KEEP)))

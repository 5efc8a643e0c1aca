"""The relevance heatmap: each local vector's relevance painted over its box on the page.

The picture is a small RGBA PNG laid over the page image and stretched to it by the
browser, so its resolution only needs to resolve the patches, not the page's text.
Colours are relative to the page itself (its median relevance transparent, its best
vector solid), because the question a heatmap answers is *where*, not *how much*.
"""

from __future__ import annotations

__all__ = ["HEATMAP_WIDTH", "paint_heatmap"]

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image

    from ..grounding import PatchRelevance

#: overlay width in pixels at most: finer than any patch grid (ColPali: 32 columns)
HEATMAP_WIDTH = 384
_MAX_ALPHA = 0.6  # the strongest patch still lets its words show through
_LOW = np.array([255, 214, 0], np.float32)  # yellow: somewhat relevant
_HIGH = np.array([214, 0, 0], np.float32)  # red: the page's most relevant patches


def paint_heatmap(evidence: PatchRelevance, page_size: tuple[int, int]) -> Image | None:
    """An RGBA overlay of ``page_size``'s aspect ratio, or None without local evidence.

    Only local vectors are painted (a whole-page vector says nothing of where); where boxes
    overlap (merged tokens carry the union of their members' boxes) the higher value wins.
    """
    from PIL import Image

    local = evidence.local & np.isfinite(evidence.relevance)
    if not local.any():
        return None
    boxes = evidence.boxes[local]  # (m, 4)
    values = evidence.relevance[local].astype(np.float32)  # (m,)
    low, high = float(np.median(values)), float(values.max())
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) if high > low \
        else np.ones_like(values)
    width = max(1, min(HEATMAP_WIDTH, page_size[0]))
    height = max(1, round(width * page_size[1] / max(1, page_size[0])))
    heat = np.zeros((height, width), np.float32)  # (h, w), 0 = nothing painted
    for (x0, y0, x1, y1), value in zip(boxes.tolist(), scaled.tolist()):
        # at least one pixel, so a thin line box still shows
        c0, r0 = int(x0 * width), int(y0 * height)
        c1, r1 = max(c0 + 1, int(np.ceil(x1 * width))), max(r0 + 1, int(np.ceil(y1 * height)))
        cell = heat[r0:r1, c0:c1]
        np.maximum(cell, value, out=cell)
    rgb = _LOW[None, None, :] + (_HIGH - _LOW)[None, None, :] * heat[..., None]  # (h, w, 3)
    alpha = (_MAX_ALPHA * 255.0) * heat  # (h, w)
    pixels = np.dstack([rgb, alpha]).round().clip(0, 255).astype(np.uint8)  # (h, w, 4)
    return Image.fromarray(pixels, "RGBA")

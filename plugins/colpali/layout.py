"""Which output tokens of a ColVision model become page vectors, and the box of each.

A page goes into the model as one token sequence: the image tokens (one per patch for
PaliGemma, one per 2x2 patch block for Qwen2-VL) plus a short text prompt and special
tokens. Both families feed the WHOLE page through a plain resize (no crop, no padding), so
the image tokens tile the page exactly in row-major order.

Non-image tokens (the prompt, ``<bos>``, ``<|im_start|>``...) are kept, with the whole-page
box: the models were trained to score pages with them (the reference MaxSim sums over every
non-padding token), so dropping them would change retrieval scores, while grounding
ignores whole-page boxes and so is not disturbed by them. Padding tokens (attention mask 0)
are dropped: they are zero vectors, not page content.

Pure numpy: it runs in the engine's background ``prepare`` thread.
"""

from __future__ import annotations

__all__ = ["TokenLayout", "paligemma_cells", "qwen2_vl_cells", "token_layout"]

from dataclasses import dataclass

import numpy as np

from retriever.errors import RetrieverError
from retriever.geometry import WHOLE, grid_boxes, patch_area_box


@dataclass(frozen=True)
class TokenLayout:
    """``keep`` (n,) positions in the padded sequence; ``boxes`` (n, 4) float32 on the page."""

    keep: np.ndarray
    boxes: np.ndarray


def paligemma_cells(input_h: int, input_w: int, patch: int) -> np.ndarray:
    """Boxes of SigLIP's patch grid for a page resized (stretched) to ``input_h x input_w``.

    SigLIP's patch convolution drops the last ``input % patch`` pixels of each side, so
    for an input that is not a multiple of the patch the grid covers slightly less than
    the page; for the real 448 / 14 it is exactly 32 x 32 cells over the whole page.
    """
    covered, rows, cols = patch_area_box(WHOLE, input_h, input_w, patch)
    return grid_boxes(rows, cols, covered).astype(np.float32)  # (rows * cols, 4)


def qwen2_vl_cells(grid_thw: tuple[int, int, int], merge: int) -> np.ndarray:
    """Boxes of Qwen2-VL's merged tokens for ``image_grid_thw = (t, h, w)`` (in patches).

    ``smart_resize`` scales the whole page to ``h x w`` patches (multiples of ``merge``);
    the image processor orders patches so that each ``merge x merge`` block is contiguous
    and the blocks run row-major, and the merger turns each block into one token. So the
    tokens are an ``(h / merge) x (w / merge)`` row-major grid over the page, repeated per
    temporal frame (``t`` is 1 for a still image).
    """
    t, h, w = (int(v) for v in grid_thw)
    if merge < 1 or h % merge or w % merge or t < 1:
        raise RetrieverError(f"ColQwen2: image grid {t}x{h}x{w} does not split into "
                             f"{merge}x{merge} merged blocks")
    cells = grid_boxes(h // merge, w // merge).astype(np.float32)  # (h*w / merge^2, 4)
    return np.tile(cells, (t, 1))  # (t * h*w / merge^2, 4)


def token_layout(input_ids: np.ndarray, attention_mask: np.ndarray, image_token_id: int,
                 cells: np.ndarray) -> TokenLayout:
    """Keep every real token; image tokens get ``cells`` in order, the rest the whole page.

    Raises RetrieverError when the number of image tokens does not match the grid, which
    would mean the processor and the geometry disagree (a wrong box is worse than none).
    """
    ids = np.asarray(input_ids).reshape(-1)  # (seq,)
    mask = np.asarray(attention_mask).reshape(-1).astype(bool)  # (seq,)
    keep = np.flatnonzero(mask)  # (n,)
    is_image = ids[keep] == image_token_id  # (n,)
    n_image = int(is_image.sum())
    if n_image != len(cells):
        raise RetrieverError(
            f"page has {n_image} image tokens but its patch grid has {len(cells)} cells",
            hint="the processor's image size does not match the model config")
    boxes = np.empty((keep.size, 4), np.float32)  # (n, 4)
    boxes[:] = WHOLE
    boxes[is_image] = cells
    return TokenLayout(keep.astype(np.int64), boxes)

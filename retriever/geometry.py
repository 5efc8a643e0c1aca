"""Where a ViT patch sat on the ORIGINAL page, after the encoder's resize and crop.

Every image encoder resizes (and often centre-crops) a page before cutting it into
patches. To give each patch vector its box on the page, undo those steps: find the window
of the page the model input shows, then split that window into the patch grid. Pure
numpy; boxes are normalized ``[x0, y0, x1, y1]``, origin top-left.

The size arithmetic follows transformers' image processors and torchvision: a
shortest-edge resize makes the short side exactly ``S`` and the long side
``int(S * long / short)`` (truncated); a centre crop starts at ``(resized - crop) // 2``.
"""

from __future__ import annotations

__all__ = [
    "Box",
    "WHOLE",
    "grid_boxes",
    "shortest_edge_size",
    "center_crop_window",
    "center_crop_content_box",
    "resize_content_box",
    "patch_area_box",
    "clip_to_page",
    "input_window",
    "patch_grid_boxes",
]

from typing import Literal

import numpy as np

from .errors import RetrieverError

Box = tuple[float, float, float, float]
WHOLE: Box = (0.0, 0.0, 1.0, 1.0)


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise RetrieverError(f"geometry: {name} must be positive, got {value}")


def grid_boxes(rows: int, cols: int, content_box: Box = WHOLE) -> np.ndarray:
    """Row-major boxes of a ``rows x cols`` grid laid over ``content_box``: (rows*cols, 4).

    Cell ``r * cols + c`` is row ``r`` (top to bottom), column ``c`` (left to right), the
    order in which a ViT flattens its patch tokens.
    """
    _positive(rows=rows, cols=cols)
    x0, y0, x1, y1 = (float(v) for v in content_box)
    xs = x0 + (x1 - x0) * np.arange(cols + 1, dtype=np.float64) / cols  # (cols + 1,)
    ys = y0 + (y1 - y0) * np.arange(rows + 1, dtype=np.float64) / rows  # (rows + 1,)
    left, top = np.meshgrid(xs[:-1], ys[:-1])  # (rows, cols) each
    right, bottom = np.meshgrid(xs[1:], ys[1:])
    return np.stack([left, top, right, bottom], axis=-1).reshape(rows * cols, 4)


def shortest_edge_size(orig_w: int, orig_h: int, shortest: int) -> tuple[int, int]:
    """``(width, height)`` after resizing the short side to ``shortest``, keeping aspect."""
    _positive(orig_w=orig_w, orig_h=orig_h, shortest=shortest)
    if orig_w <= orig_h:
        return int(shortest), int(shortest * orig_h / orig_w)
    return int(shortest * orig_w / orig_h), int(shortest)


def center_crop_window(
    orig_w: int, orig_h: int, resize_shortest: int | None, crop_h: int, crop_w: int,
    offset: Literal["floor", "round"] = "floor",
) -> Box:
    """The window of the page a centre crop shows, in normalized page coordinates.

    ``resize_shortest`` None means no resize before the crop. Where the crop is larger
    than the (resized) page, the processor pads, and the window reaches past ``[0, 1]``
    by exactly the padding: grid cells laid over it then fall partly or wholly off the page
    (see ``clip_to_page``). ``offset="round"`` follows torchvision's ``CenterCrop``, which
    rounds half offsets; transformers' processors floor them.
    """
    _positive(crop_h=crop_h, crop_w=crop_w)
    if resize_shortest is None:
        width, height = int(orig_w), int(orig_h)
        _positive(orig_w=width, orig_h=height)
    else:
        width, height = shortest_edge_size(orig_w, orig_h, resize_shortest)

    def start(size: int, crop: int) -> int:
        if offset == "round":  # torchvision: rounded offset, or pad (crop - size) // 2 first
            return int(round((size - crop) / 2.0)) if size >= crop else -((crop - size) // 2)
        return (size - crop) // 2

    left, top = start(width, crop_w), start(height, crop_h)
    return (left / width, top / height, (left + crop_w) / width, (top + crop_h) / height)


def center_crop_content_box(
    orig_w: int, orig_h: int, resize_shortest: int | None, crop_h: int, crop_w: int,
    offset: Literal["floor", "round"] = "floor",
) -> Box:
    """The part of the page that a shortest-edge resize + centre crop keeps (clipped).

    For the usual case (crop no larger than the resized page) this is the crop window;
    margins outside it were cut away and get no vectors.
    """
    window = center_crop_window(orig_w, orig_h, resize_shortest, crop_h, crop_w, offset)
    x0, y0, x1, y1 = window
    return (max(0.0, x0), max(0.0, y0), min(1.0, x1), min(1.0, y1))


def resize_content_box() -> Box:
    """A plain resize to a fixed size (SigLIP) stretches the whole page into the input."""
    return WHOLE


def patch_area_box(window: Box, input_h: int, input_w: int, patch: int) -> tuple[Box, int, int]:
    """The part of ``window`` the patch grid covers, and the grid's ``(rows, cols)``.

    A ViT's patch convolution drops the last ``input % patch`` pixels of each side, so
    when the input is not a multiple of the patch size the grid covers a bit less than
    the whole window.
    """
    _positive(input_h=input_h, input_w=input_w, patch=patch)
    rows, cols = input_h // patch, input_w // patch
    if rows == 0 or cols == 0:
        raise RetrieverError(f"geometry: input {input_w}x{input_h} is smaller than one patch")
    x0, y0, x1, y1 = window
    covered = (x0, y0, x0 + (x1 - x0) * cols * patch / input_w,
               y0 + (y1 - y0) * rows * patch / input_h)
    return covered, rows, cols


def clip_to_page(boxes: np.ndarray, min_area: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Boxes clipped to the page, and a mask of those with area left (padding-only: False)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    clipped = np.clip(boxes, 0.0, 1.0)  # (n, 4)
    area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])  # (n,)
    return clipped, area > min_area


def input_window(
    orig_w: int, orig_h: int, *, shortest_edge: int | None = None,
    size: tuple[int, int] | None = None, crop: tuple[int, int] | None = None,
    offset: Literal["floor", "round"] = "floor",
) -> Box:
    """The window of the page that a model input shows after resize and optional crop.

    Resize either the short side to ``shortest_edge`` or the whole page to ``size``
    ``(height, width)`` (or neither), then centre-crop to ``crop`` ``(height, width)``.
    Normalized coordinates do not change under a resize, so only the crop moves the
    window; past ``[0, 1]`` means padding (see ``center_crop_window``).
    """
    if shortest_edge is not None and size is not None:
        raise RetrieverError("geometry: resize by shortest_edge or by size, not both")
    if shortest_edge is not None:
        width, height = shortest_edge_size(orig_w, orig_h, shortest_edge)
    elif size is not None:
        height, width = int(size[0]), int(size[1])
    else:
        width, height = int(orig_w), int(orig_h)
    if crop is None:
        return WHOLE
    return center_crop_window(width, height, None, int(crop[0]), int(crop[1]), offset)


def _cell_edges(n: int, patch: int, shift: float) -> np.ndarray:
    """Edges (n + 1,) in input pixels between tokens whose centres sit ``shift`` px off the
    cell centres: each pixel belongs to the nearest token; outer edges stay put."""
    inner = patch * np.arange(1, n, dtype=np.float64) + shift  # midpoints between centres
    return np.clip(np.concatenate([[0.0], inner, [float(n * patch)]]), 0.0, n * patch)


def patch_grid_boxes(window: Box, input_h: int, input_w: int, patch: int,
                     *, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Page boxes of a ViT's row-major patch grid, and which patches show any page at all.

    Returns ``(boxes (rows*cols, 4) clipped to the page, keep (rows*cols,) bool)``; drop the
    vectors where ``keep`` is False (they saw only padding).

    ``shift`` (input pixels) is for convolutional stems whose tokens are not centred on
    their cells: a stack of stride-2 3x3 convolutions with padding 1 centres token ``i`` on
    input pixel ``stride * i``, i.e. ``shift = 0.5 - stride / 2``. Each box then spans the
    pixels nearer to its token than to any other, so the boxes still tile the window.
    """
    covered, rows, cols = patch_area_box(window, input_h, input_w, patch)
    if shift == 0.0:
        return clip_to_page(grid_boxes(rows, cols, covered))
    x0, y0, x1, y1 = covered
    xs = x0 + (x1 - x0) * _cell_edges(cols, patch, shift) / (cols * patch)  # (cols + 1,)
    ys = y0 + (y1 - y0) * _cell_edges(rows, patch, shift) / (rows * patch)  # (rows + 1,)
    left, top = np.meshgrid(xs[:-1], ys[:-1])  # (rows, cols) each
    right, bottom = np.meshgrid(xs[1:], ys[1:])
    boxes = np.stack([left, top, right, bottom], axis=-1).reshape(rows * cols, 4)
    return clip_to_page(boxes)

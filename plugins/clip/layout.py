"""Where a transformers image processor's output sits on the original page.

CLIP processors resize the short side and centre-crop (the cropped-away margins of a page
get no vectors); SigLIP processors resize the whole page to a fixed square (the grid
stretches over the whole page). Both are read from the processor's own configuration,
so a checkpoint with a different input size needs no code change.
"""

from __future__ import annotations

__all__ = ["ProcessorGeometry"]

from dataclasses import dataclass
from typing import Any

import numpy as np

from retriever.errors import UsageError
from retriever.geometry import Box, input_window, patch_grid_boxes


def _field(size: Any, key: str) -> int | None:
    """A key of a processor size (a dict in transformers 4, a SizeDict in 5)."""
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return None if value is None else int(value)


@dataclass(frozen=True)
class ProcessorGeometry:
    shortest_edge: int | None = None
    size: tuple[int, int] | None = None  # (height, width)
    crop: tuple[int, int] | None = None  # (height, width)

    @classmethod
    def of(cls, image_processor: Any) -> ProcessorGeometry:
        """Read resize and crop settings; raise UsageError for ones we cannot undo."""
        shortest = fixed = crop = None
        if getattr(image_processor, "do_resize", False):
            size = image_processor.size
            height, width = _field(size, "height"), _field(size, "width")
            shortest = _field(size, "shortest_edge")
            other = [k for k in ("longest_edge", "max_height", "max_width")
                     if _field(size, k) is not None]
            if other or (shortest is None) == (height is None or width is None):
                raise UsageError(
                    f"cannot map patches back to the page for resize settings {size}",
                    hint="use patches=false with this checkpoint")
            fixed = None if shortest is not None else (height, width)
        if getattr(image_processor, "do_center_crop", False):
            crop_size = image_processor.crop_size
            crop = (_field(crop_size, "height"), _field(crop_size, "width"))
        if getattr(image_processor, "do_pad", False):
            raise UsageError("cannot map patches back to the page when the processor pads",
                             hint="use patches=false with this checkpoint")
        return cls(shortest, fixed, crop)  # type: ignore[arg-type]

    def window(self, width: int, height: int) -> Box:
        """The window of a ``width x height`` page that the model input shows."""
        # transformers' processors floor the crop offset (both of its backends agree on
        # that whenever the crop fits, which a shortest-edge resize >= crop guarantees).
        return input_window(width, height, shortest_edge=self.shortest_edge, size=self.size,
                            crop=self.crop, offset="floor")

    def patch_boxes(self, width: int, height: int, input_h: int, input_w: int,
                    patch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(boxes, keep)`` of the row-major patch grid on the original page."""
        boxes, keep = patch_grid_boxes(self.window(width, height), input_h, input_w, patch)
        return boxes.astype(np.float32), keep

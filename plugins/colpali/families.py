"""What differs between the ColPali and ColQwen2 families: classes, inputs, patch geometry.

The encoder is the same for both; a family says which transformers classes load the
weights, which processor outputs the model takes, and where each image token sat on the
page (a fixed square grid for PaliGemma, a per-page grid from ``image_grid_thw`` for
Qwen2-VL / Qwen2.5-VL).
"""

from __future__ import annotations

__all__ = ["Family", "ColPaliFamily", "ColQwen2Family", "family_for"]

from typing import Any, Protocol

import numpy as np

from retriever.errors import RetrieverError

from .layout import paligemma_cells, qwen2_vl_cells


class Family(Protocol):
    model_type: str  # ``config.model_type`` of the checkpoints it loads
    model_class: str  # a class name in ``transformers``
    processor_class: str
    page_inputs: tuple[str, ...]  # processor outputs the model's forward takes
    query_inputs: tuple[str, ...]

    def check(self, model: Any, processor: Any) -> None:
        """Raise RetrieverError if the processor's geometry does not fit the model."""

    def page_cells(self, features: Any, index: int) -> np.ndarray:
        """Boxes (n_image_tokens, 4) of item ``index`` of a processed page batch."""

    def page_cost(self, width: int, height: int) -> float:
        """Relative cost of a page, used to sort pages so that batches pad little."""


class ColPaliFamily:
    """PaliGemma: every page is stretched to one fixed square; image tokens are patches."""

    model_type = "colpali"
    model_class = "ColPaliForRetrieval"
    processor_class = "ColPaliProcessor"
    # token_type_ids mark the prompt as PaliGemma's prefix, which attends bidirectionally;
    # without them the text attends causally and a query's vectors change with its padding
    page_inputs = ("input_ids", "attention_mask", "pixel_values", "token_type_ids")
    query_inputs = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(self) -> None:
        self._cells: np.ndarray | None = None

    def check(self, model: Any, processor: Any) -> None:
        vision = model.config.vlm_config.vision_config
        size = processor.image_processor.size
        if not getattr(processor.image_processor, "do_resize", True) or not size["height"]:
            raise RetrieverError("ColPali: the image processor must resize pages to a fixed size")
        self._cells = paligemma_cells(int(size["height"]), int(size["width"]),
                                      int(vision.patch_size))
        if len(self._cells) != int(processor.image_seq_length):
            raise RetrieverError(
                f"ColPali: the processor inserts {processor.image_seq_length} image tokens, but "
                f"a {size['height']}x{size['width']} image in {vision.patch_size}-px patches "
                f"gives {len(self._cells)}",
                hint="the processor and the model config come from different checkpoints")

    def page_cells(self, features: Any, index: int) -> np.ndarray:
        if self._cells is None:
            raise RetrieverError("ColPali: check() must run before encoding")
        return self._cells

    def page_cost(self, width: int, height: int) -> float:
        return 1.0  # every page has the same number of tokens


class ColQwen2Family:
    """Qwen2-VL / Qwen2.5-VL: dynamic resolution; one token per merged 2x2 patch block."""

    model_type = "colqwen2"  # Qwen2.5-VL checkpoints too: ColQwen2 over a qwen2_5_vl config
    model_class = "ColQwen2ForRetrieval"
    processor_class = "ColQwen2Processor"
    page_inputs = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw")
    query_inputs = ("input_ids", "attention_mask")

    def __init__(self) -> None:
        self.merge = 2

    def check(self, model: Any, processor: Any) -> None:
        merge = int(getattr(processor.image_processor, "merge_size", 2))
        vision_merge = int(getattr(model.config.vlm_config.vision_config, "spatial_merge_size",
                                   merge))
        if merge != vision_merge:
            raise RetrieverError(
                f"ColQwen2: the image processor merges {merge}x{merge} patches but the vision "
                f"tower merges {vision_merge}x{vision_merge}",
                hint="the processor and the model config come from different checkpoints")
        self.merge = merge

    def page_cells(self, features: Any, index: int) -> np.ndarray:
        grid = features["image_grid_thw"][index]  # (3,) t, h, w in patches
        return qwen2_vl_cells(tuple(int(v) for v in grid), self.merge)

    def page_cost(self, width: int, height: int) -> float:
        # smart_resize keeps the area roughly (up to max_pixels): tokens grow with area
        return float(width) * float(height)


def family_for(name: str) -> Family:
    if name == "colpali":
        return ColPaliFamily()
    if name == "colqwen2":
        return ColQwen2Family()
    raise RetrieverError(f"unknown ColVision family {name!r}")

"""torch kernels for code MaxSim: int8 matmuls (VNNI on x86) over blocks of pages.

Binary codes are unpacked per block to 0/1 bytes (``np.unpackbits``, cheap) and multiplied
with int8 query codes; ``2 * b . y - sum(y)`` turns a 0/1 bit vector into the +-1 sign
vector's dot product, so no +-1 copy is ever made. Int8 codes multiply directly, then each
row is scaled by its vector's scale before the per-page maximum. Where ``torch._int_mm``
is missing or refuses a shape, the same integers go through a float32 matmul (exact: the
sums stay far below 2**24).

Imported only when a code kernel runs on the torch backend.
"""

from __future__ import annotations

__all__ = ["score_codes", "int_matmul"]

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .ragged import PageBlock
from .scoring_torch import as_tensor, blocked_maxsim

if TYPE_CHECKING:
    from .quantization import PageCodes


@lru_cache(maxsize=1)
def _has_int_mm() -> bool:
    fn = getattr(torch, "_int_mm", None)
    if fn is None:
        return False
    try:
        out = fn(torch.ones(17, 8, dtype=torch.int8), torch.ones(8, 8, dtype=torch.int8))
    except RuntimeError:
        return False
    return bool(out[0, 0].item() == 8)


def int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(m, k) int8 @ (k, n) int8 -> (m, n) int32, on the int8 path when torch has one."""
    if _has_int_mm():
        try:
            return torch._int_mm(a, b)
        except RuntimeError:  # a shape the backend does not take; the float path is exact
            pass
    return (a.float() @ b.float()).to(torch.int32)


def score_codes(
    codes: PageCodes,
    stacked: np.ndarray,
    starts: np.ndarray,
    blocks: Sequence[PageBlock],
    n_out: int,
    threads: int | None,
) -> np.ndarray:
    """Code MaxSim of the stacked live queries (q_total, d) -> (n_live, n_out) float32."""
    from .quantization import BinaryCodes, quantize_int8

    q_total = stacked.shape[0]
    if isinstance(codes, BinaryCodes):
        q_codes, factors = codes.query_codes(stacked)  # (q_total, d) int8, (q_total,)
        q_t = torch.from_numpy(q_codes).T.contiguous()  # (d, q_total)
        sums = torch.from_numpy(q_codes.sum(axis=1, dtype=np.int64).astype(np.float32))
        scale = torch.from_numpy(factors)  # (q_total,)

        def similarities(block: PageBlock) -> Any:
            bits = as_tensor(codes.signs(block.rows)).view(torch.int8)  # (rows, d) 0/1
            return int_matmul(bits, q_t)  # (rows, q_total) int32

        def finish(best: Any) -> Any:  # the 0/1 dot product back to the +-1 one, scaled
            return (2 * best.float() - sums) * scale
    else:
        q_values, q_scales = quantize_int8(stacked)  # (q_total, d), (q_total,)
        q_t = torch.from_numpy(q_values).T.contiguous()  # (d, q_total)
        scale = torch.from_numpy(q_scales)

        def similarities(block: PageBlock) -> Any:
            dots = int_matmul(as_tensor(codes.values[block.rows]), q_t)  # (rows, q_total)
            row_scale = as_tensor(codes.scales[block.rows]).unsqueeze(1)  # (rows, 1)
            return dots * row_scale  # int32 * float32 -> float32

        def finish(best: Any) -> Any:
            return best * scale

    return blocked_maxsim(blocks, n_out, starts, q_total, similarities, finish,
                          threads=threads)

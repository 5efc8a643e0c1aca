"""torch kernels for code MaxSim: int8 matmuls (VNNI on x86) over blocks of pages.

Binary codes are unpacked per block to 0/1 bytes (``np.unpackbits``, cheap) and multiplied
with int8 query codes; ``2 * b . y - sum(y)`` turns a 0/1 bit vector into the +-1 sign
vector's dot product, so no +-1 copy is ever made. Int8 codes multiply directly, then each
row is scaled by its vector's scale before the per-page maximum. Where ``torch._int_mm``
is missing or refuses a shape, the same integers go through a float32 matmul (exact: the
sums stay far below 2**24).

Which of the two runs is measured, not assumed: on CPUs without VNNI (AVX2 only, common
on cloud AMD EPYC hosts) ``torch._int_mm`` was measured 6.7x slower than a float32 matmul
of the same integers, on others it is several times faster. ``code_matmul_path`` times
both once per process on a block-sized product and keeps the faster;
``RETRIEVER_CODE_MATMUL=int8|float32`` forces one (tests force each).

Imported only when a code kernel runs on the torch backend.
"""

from __future__ import annotations

__all__ = ["CODE_MATMUL_PATHS", "code_matmul_path", "score_codes", "int_matmul"]

import os
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import UsageError
from .ragged import PageBlock
from .scoring_torch import as_tensor, blocked_maxsim, torch_threads

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


CODE_MATMUL_PATHS = ("int8", "float32")
#: the probe's product: one kernel block of int8 codes against 32 query vectors
_PROBE_ROWS, _PROBE_DIM, _PROBE_QUERY = 4096, 128, 32


def _fastest(fn: Callable[[], object], repeats: int = 5) -> float:
    fn()  # warm-up: lazy kernels, allocator
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@lru_cache(maxsize=1)
def _measured_path() -> str:
    if not _has_int_mm():
        return "float32"
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (_PROBE_ROWS, _PROBE_DIM), dtype=torch.int8, generator=gen)
    b = torch.randint(-127, 128, (_PROBE_DIM, _PROBE_QUERY), dtype=torch.int8, generator=gen)
    b_float = b.float()
    # kernel workers run torch single-threaded, so the probe does too; the float path pays
    # the int8 -> float32 conversion of the block exactly as the kernel does
    with torch_threads(1), torch.inference_mode():
        t_int = _fastest(lambda: torch._int_mm(a, b))
        t_float = _fastest(lambda: a.float() @ b_float)
    return "int8" if t_int < t_float else "float32"


def code_matmul_path() -> str:
    """How code similarities are multiplied here: "int8" (``torch._int_mm``) or
    "float32" (the same integers in a float32 matmul); measured once per process."""
    forced = os.environ.get("RETRIEVER_CODE_MATMUL", "").strip().lower()
    if forced in ("", "auto"):
        return _measured_path()
    if forced not in CODE_MATMUL_PATHS:
        raise UsageError(f"RETRIEVER_CODE_MATMUL={forced!r} is not a code matmul path",
                         hint=f"use one of {CODE_MATMUL_PATHS} or auto")
    if forced == "int8" and not _has_int_mm():
        raise UsageError("RETRIEVER_CODE_MATMUL=int8, but this torch has no int8 matmul")
    return forced


def int_matmul(a: torch.Tensor, b: torch.Tensor, path: str | None = None) -> torch.Tensor:
    """(m, k) int8 @ (k, n) int8 -> (m, n) int32 on ``path`` (default: the probe's)."""
    if (path or code_matmul_path()) == "int8":
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
    path = code_matmul_path()  # resolved once, outside the worker threads
    if isinstance(codes, BinaryCodes):
        q_codes, factors = codes.query_codes(stacked)  # (q_total, d) int8, (q_total,)
        q_t = torch.from_numpy(q_codes).T.contiguous()  # (d, q_total)
        sums = torch.from_numpy(q_codes.sum(axis=1, dtype=np.int64).astype(np.float32))
        scale = torch.from_numpy(factors)  # (q_total,)

        def similarities(block: PageBlock) -> Any:
            bits = as_tensor(codes.signs(block.rows)).view(torch.int8)  # (rows, d) 0/1
            return int_matmul(bits, q_t, path)  # (rows, q_total) int32

        def finish(best: Any) -> Any:  # the 0/1 dot product back to the +-1 one, scaled
            return (2 * best.float() - sums) * scale
    else:
        q_values, q_scales = quantize_int8(stacked)  # (q_total, d), (q_total,)
        q_t = torch.from_numpy(q_values).T.contiguous()  # (d, q_total)
        scale = torch.from_numpy(q_scales)

        def similarities(block: PageBlock) -> Any:
            dots = int_matmul(as_tensor(block.take(codes.values)), q_t, path)  # (rows, q_total)
            row_scale = as_tensor(block.take(codes.scales)).unsqueeze(1)  # (rows, 1)
            return dots * row_scale  # int32 * float32 -> float32

        def finish(best: Any) -> Any:
            return best * scale

    return blocked_maxsim(blocks, n_out, starts, q_total, similarities, finish,
                          threads=threads)

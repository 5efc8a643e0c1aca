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

Binary codes have a second kernel that needs no matmul: each packed byte of a page vector
indexes a table of the query's partial sums for that byte's 8 bits (256 entries per byte
position), and ``embedding_bag`` adds a row's 16 lookups. It is exact too (integer sums in
float32). On a Zen 4 host a block took 1.0-1.4x the time of the VNNI int8 matmul and about
a tenth of the float32 matmul's, which is the one an AVX2-only CPU runs well.
``binary_kernel`` measures it against unpacking plus the chosen matmul and keeps the faster;
``RETRIEVER_BINARY_KERNEL=lookup|unpack`` forces one.

Imported only when a code kernel runs on the torch backend.
"""

from __future__ import annotations

__all__ = ["BINARY_KERNELS", "CODE_MATMUL_PATHS", "binary_kernel", "byte_tables",
           "code_matmul_path", "int_matmul", "lookup_dots", "score_codes"]

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


def _forced(variable: str, choices: tuple[str, ...], what: str) -> str | None:
    """The choice an environment variable forces, or None for the probe's ("", "auto")."""
    forced = os.environ.get(variable, "").strip().lower()
    if forced in ("", "auto"):
        return None
    if forced not in choices:
        raise UsageError(f"{variable}={forced!r} is not a {what}",
                         hint=f"use one of {choices} or auto")
    return forced


def code_matmul_path() -> str:
    """How code similarities are multiplied here: "int8" (``torch._int_mm``) or
    "float32" (the same integers in a float32 matmul); measured once per process."""
    forced = _forced("RETRIEVER_CODE_MATMUL", CODE_MATMUL_PATHS, "code matmul path")
    if forced is None:
        return _measured_path()
    if forced == "int8" and not _has_int_mm():
        raise UsageError("RETRIEVER_CODE_MATMUL=int8, but this torch has no int8 matmul")
    return forced


BINARY_KERNELS = ("lookup", "unpack")

#: bit k of a byte, most significant first as ``np.packbits`` stores them -> (256, 8)
_BYTE_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32)


def byte_tables(q_codes: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Lookup tables of int8 query codes (q, d): ``(table, offsets)`` with ``table``
    (ceil(d/8) * 256, q) float32 holding, at ``offsets[j] + v``, the sum of the codes of
    byte position j's components whose bits are set in ``v``. Summing a packed row's
    ``table[offsets + row]`` gives its 0/1 dot product with every query code, exactly
    (at most 127 * d in magnitude, far below float32's 2**24)."""
    q, d = q_codes.shape
    n_bytes = (d + 7) // 8
    padded = np.zeros((q, n_bytes * 8), np.float32)  # the padding bits are never set
    padded[:, :d] = q_codes
    # (n_bytes, 256, q): byte position, byte value, query vector
    table = np.einsum("vk,qjk->jvq", _BYTE_BITS, padded.reshape(q, n_bytes, 8))
    offsets = np.arange(n_bytes, dtype=np.int32) * 256
    return torch.from_numpy(np.ascontiguousarray(table.reshape(n_bytes * 256, q))), offsets


def lookup_dots(packed: np.ndarray, table: torch.Tensor, offsets: np.ndarray) -> torch.Tensor:
    """Packed 0/1 rows (rows, n_bytes) uint8 -> (rows, q) float32 dot products."""
    # int32 indices: int64 ones took several times longer in embedding_bag here. Made in
    # numpy, so a read-only memory map needs no extra copy before torch shares it.
    indices = packed.astype(np.int32)  # (rows, n_bytes)
    indices += offsets
    return torch.nn.functional.embedding_bag(torch.from_numpy(indices), table, mode="sum")


@lru_cache(maxsize=None)
def _measured_binary_kernel(path: str) -> str:
    """The faster binary kernel next to unpacking into the ``path`` matmul."""
    gen = np.random.default_rng(0)
    packed = gen.integers(0, 256, (_PROBE_ROWS, _PROBE_DIM // 8), dtype=np.uint8)
    q_codes = gen.integers(-127, 128, (_PROBE_QUERY, _PROBE_DIM), dtype=np.int8)
    table, offsets = byte_tables(q_codes)
    q_t = torch.from_numpy(q_codes).T.contiguous()

    def unpack() -> object:
        bits = torch.from_numpy(np.unpackbits(packed, axis=1)).view(torch.int8)
        return int_matmul(bits, q_t, path)

    with torch_threads(1), torch.inference_mode():  # as the kernel workers run
        t_lookup = _fastest(lambda: lookup_dots(packed, table, offsets))
        t_unpack = _fastest(unpack)
    return "lookup" if t_lookup < t_unpack else "unpack"


def binary_kernel() -> str:
    """How binary codes are scored here: "lookup" (byte tables, no matmul) or "unpack"
    (0/1 bytes through the code matmul); measured once per process."""
    forced = _forced("RETRIEVER_BINARY_KERNEL", BINARY_KERNELS, "binary code kernel")
    return forced or _measured_binary_kernel(code_matmul_path())


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
        sums = torch.from_numpy(q_codes.sum(axis=1, dtype=np.int64).astype(np.float32))
        scale = torch.from_numpy(factors)  # (q_total,)
        if binary_kernel() == "lookup":
            table, offsets = byte_tables(q_codes)

            def similarities(block: PageBlock) -> Any:  # (rows, q_total) float32
                return lookup_dots(block.take(codes.bits), table, offsets)
        else:
            q_t = torch.from_numpy(q_codes).T.contiguous()  # (d, q_total)

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

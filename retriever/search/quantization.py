"""Compact codes of page vectors and MaxSim on them: the first stage of two-stage search.

Two formats, both computed per stored vector:

- ``BinaryCodes``: one sign bit per dimension, 8 per byte (``np.packbits`` order), 16 bytes
  for a 128-d vector. Similarity is Hamming-based, scaled to the cosine range: for a query
  vector ``q`` and a page vector ``v`` with sign vectors ``x, y`` in ``{-1, +1}^d``,
  ``hamming`` mode scores ``(d - 2 * hamming(x, y)) / d``; ``asymmetric`` mode keeps the
  query in int8 and scores ``q . y / sqrt(d)``, which loses less (Vespa and others report
  the same) at the same cost.
- ``Int8Codes``: ``v ~ scale * values``, ``values`` int8 in [-127, 127], one float32 scale
  per vector (``max |v| / 127``); similarity ``q . v`` from int8 dot products.

A page's code score is the MaxSim of those similarities (sum over query vectors of the
best page vector). Kernels: torch's int8 matmul when torch is installed
(``retriever.search.quantization_torch``), numpy otherwise (``np.bitwise_count`` over uint64
words for Hamming, float32 BLAS for the rest).
"""

from __future__ import annotations

__all__ = [
    "QUANTIZATIONS",
    "BINARY_MODES",
    "check_quantization",
    "BinaryCodes",
    "Int8Codes",
    "PageCodes",
    "encode_codes",
    "quantize_int8",
]

from collections.abc import Callable, Sequence
from typing import Union

import numpy as np

from ..errors import RetrieverError, UsageError
from .ragged import PageBlock, check_offsets, plan_blocks, stack_queries, take_rows
from .scoring_torch import default_block_rows, resolve_backend

QUANTIZATIONS = ("none", "int8", "binary")
BINARY_MODES = ("asymmetric", "hamming")
_CHUNK_ROWS = 8192
_POPCOUNT8 = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(1)  # (256,)


def check_quantization(name: str) -> str:
    if name not in QUANTIZATIONS:
        raise UsageError(f"unknown quantization {name!r}", hint=f"use one of {QUANTIZATIONS}")
    return name


def quantize_int8(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8: -> (values (n, d) int8, scales (n,) float32).

    ``vectors ~ scales[:, None] * values``; an all-zero row gets scale 1 and zeros.
    """
    vectors = np.asarray(vectors)
    n = vectors.shape[0]
    values = np.empty(vectors.shape, np.int8)  # (n, d)
    scales = np.empty(n, np.float32)  # (n,)
    for lo in range(0, n, _CHUNK_ROWS):  # chunks stay in cache through the passes below
        x = np.asarray(vectors[lo : lo + _CHUNK_ROWS], dtype=np.float32)
        peak = np.abs(x).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        scales[lo : lo + _CHUNK_ROWS] = scale
        values[lo : lo + _CHUNK_ROWS] = np.rint(x / scale[:, None]).clip(-127, 127)
    return values, scales


def _words(bits: np.ndarray) -> np.ndarray:
    """Packed bytes (n, b) -> uint64 words (n, ceil(b/8)), zero-padded (pads never differ)."""
    pad = (-bits.shape[1]) % 8
    if pad:
        bits = np.pad(bits, ((0, 0), (0, pad)))
    return np.ascontiguousarray(bits).view(np.uint64)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits per row of uint64 words (n, w) -> (n,) int32."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0: one vectorized popcount per word
        return np.bitwise_count(words).sum(axis=1, dtype=np.int32)
    return _POPCOUNT8[words.view(np.uint8)].sum(axis=1, dtype=np.int32)


def _blocked_numpy(
    blocks: Sequence[PageBlock],
    n_out: int,
    starts: np.ndarray,
    q_total: int,
    similarities: Callable[[PageBlock], np.ndarray],
    finish: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """The numpy twin of ``scoring_torch.blocked_maxsim`` -> (n_live, n_out) float32."""
    out = np.full((starts.size, n_out), -np.inf, dtype=np.float32)
    if starts.size == 0:
        return out
    for block in blocks:
        sims = similarities(block)  # (rows, q_total)
        if block.uniform is not None:
            best = sims.reshape(block.n_pages, block.uniform, q_total).max(axis=1)
        else:  # every page in a plan has rows, so reduceat never sees an empty segment
            firsts = np.concatenate(([0], np.cumsum(block.lengths)[:-1]))
            best = np.maximum.reduceat(sims, firsts, axis=0)  # (pages, q_total)
        contrib = finish(best).astype(np.float32)  # (pages, q_total)
        out[:, block.out] = np.add.reduceat(contrib, starts, axis=1).T  # (n_live, pages)
    return out


class _Codes:
    """What both code formats share: row access and the page-scoring entry point."""

    kind: str = ""
    dim: int = 0

    @property
    def n(self) -> int:
        raise NotImplementedError

    def score_many(
        self,
        queries: Sequence[np.ndarray],
        offsets: np.ndarray,
        *,
        pages: np.ndarray | None = None,
        backend: str = "auto",
        threads: int | None = None,
        block_rows: int | None = None,
    ) -> np.ndarray:
        """Code MaxSim of each query against every page (or ``pages``) ->
        (n_queries, P or len(pages)) float32; ``-inf`` for pages without vectors."""
        offsets = check_offsets(offsets, self.n)
        stacked, starts, live = stack_queries(queries, self.dim)  # (q_total, d)
        n_out = offsets.size - 1 if pages is None else len(pages)
        rows = block_rows or default_block_rows(stacked.shape[0])
        blocks = plan_blocks(offsets, rows, pages)
        if resolve_backend(backend) == "torch":
            from . import quantization_torch

            scores = quantization_torch.score_codes(self, stacked, starts, blocks, n_out,
                                                    threads)
        else:
            scores = self._score_numpy(stacked, starts, blocks, n_out)
        result = np.zeros((len(queries), n_out), dtype=np.float32)
        result[live] = scores
        lengths = np.diff(offsets)
        if pages is not None:
            lengths = lengths[np.asarray(pages, dtype=np.int64)]
        result[:, lengths == 0] = -np.inf
        return result

    def _score_numpy(self, stacked: np.ndarray, starts: np.ndarray,
                     blocks: Sequence[PageBlock], n_out: int) -> np.ndarray:
        raise NotImplementedError


class BinaryCodes(_Codes):
    """Sign bits of each vector, packed: ``bits`` (n, ceil(d/8)) uint8."""

    kind = "binary"

    def __init__(self, bits: np.ndarray, dim: int, mode: str = "asymmetric") -> None:
        bits = np.asarray(bits)
        if bits.dtype != np.uint8 or bits.ndim != 2 or bits.shape[1] != (dim + 7) // 8:
            raise RetrieverError(
                f"binary codes must be uint8 (n, {(dim + 7) // 8}) for dim {dim}, "
                f"got {bits.dtype} {bits.shape}")
        if mode not in BINARY_MODES:
            raise UsageError(f"unknown binary scoring mode {mode!r}",
                             hint=f"use one of {BINARY_MODES}")
        self.bits = bits
        self.dim = int(dim)
        self.mode = mode

    @classmethod
    def encode(cls, vectors: np.ndarray, mode: str = "asymmetric") -> BinaryCodes:
        """Bit ``k`` of a row is 1 when component ``k`` is positive."""
        vectors = np.asarray(vectors)
        return cls(np.packbits(vectors > 0, axis=1), vectors.shape[1], mode)

    @property
    def n(self) -> int:
        return int(self.bits.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.bits.nbytes)

    def signs(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """The sign vectors of ``rows`` as 0/1 bytes -> (r, d) uint8."""
        return np.unpackbits(take_rows(self.bits, rows), axis=1, count=self.dim)

    def query_codes(self, stacked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Query vectors -> (int8 (q, d) codes, float32 (q,) factors) such that a page
        vector with 0/1 bits ``b`` scores ``factor * (2 * b . code - sum(code))``."""
        if self.mode == "hamming":
            codes = np.where(stacked > 0, 1, -1).astype(np.int8)  # x . y = d - 2 hamming
            factors = np.full(stacked.shape[0], 1.0 / self.dim, np.float32)
        else:
            codes, scales = quantize_int8(stacked)
            factors = (scales / np.sqrt(self.dim)).astype(np.float32)
        return codes, factors

    def _score_numpy(self, stacked, starts, blocks, n_out):
        q_codes, factors = self.query_codes(stacked)  # (q_total, d), (q_total,)
        q_total = stacked.shape[0]
        if self.mode == "hamming":
            q_words = _words(np.packbits(stacked > 0, axis=1))  # (q_total, w)

            def similarities(block: PageBlock) -> np.ndarray:
                words = _words(block.take(self.bits))  # (rows, w)
                sims = np.empty((words.shape[0], q_total), np.int32)  # (rows, q_total)
                for i in range(q_total):  # one query vector at a time keeps memory small
                    sims[:, i] = self.dim - 2 * _popcount(words ^ q_words[i])
                return sims

            def finish(best: np.ndarray) -> np.ndarray:
                return best * factors
        else:
            q_t = q_codes.astype(np.float32).T  # (d, q_total)
            sums = q_codes.sum(axis=1, dtype=np.int64).astype(np.float32)  # (q_total,)

            def similarities(block: PageBlock) -> np.ndarray:
                return self.signs(block.rows).astype(np.float32) @ q_t  # (rows, q_total)

            def finish(best: np.ndarray) -> np.ndarray:
                return (2 * best - sums) * factors

        return _blocked_numpy(blocks, n_out, starts, q_total, similarities, finish)


class Int8Codes(_Codes):
    """``values`` (n, d) int8 with per-vector ``scales`` (n,) float32."""

    kind = "int8"

    def __init__(self, values: np.ndarray, scales: np.ndarray) -> None:
        values, scales = np.asarray(values), np.asarray(scales, dtype=np.float32)
        if values.dtype != np.int8 or values.ndim != 2 or scales.shape != values.shape[:1]:
            raise RetrieverError(
                f"int8 codes must be int8 (n, d) with float32 scales (n,), got "
                f"{values.dtype} {values.shape} and {scales.shape}")
        self.values = values
        self.scales = scales
        self.dim = int(values.shape[1])

    @classmethod
    def encode(cls, vectors: np.ndarray) -> Int8Codes:
        return cls(*quantize_int8(vectors))

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + self.scales.nbytes)

    def decode(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        return self.values[rows].astype(np.float32) * self.scales[rows, None]  # (r, d)

    def _score_numpy(self, stacked, starts, blocks, n_out):
        q_values, q_scales = quantize_int8(stacked)  # (q_total, d), (q_total,)
        q_t = q_values.astype(np.float32).T  # (d, q_total)

        def similarities(block: PageBlock) -> np.ndarray:
            dots = block.take(self.values).astype(np.float32) @ q_t  # (rows, q_total)
            return dots * block.take(self.scales)[:, None]

        return _blocked_numpy(blocks, n_out, starts, stacked.shape[0], similarities,
                              lambda best: best * q_scales)


PageCodes = Union[BinaryCodes, Int8Codes]


def encode_codes(quantization: str, vectors: np.ndarray, *,
                 binary_mode: str = "asymmetric") -> PageCodes:
    """Codes of ``vectors`` (n, d) in the named format ("int8" or "binary")."""
    if check_quantization(quantization) == "binary":
        return BinaryCodes.encode(vectors, binary_mode)
    if quantization == "int8":
        return Int8Codes.encode(vectors)
    raise UsageError("quantization 'none' has no codes")


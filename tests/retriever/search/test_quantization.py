"""Codes and code MaxSim against slow, obviously correct references, on both backends."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from retriever.errors import RetrieverError, UsageError
from retriever.search.quantization import (
    BinaryCodes,
    Int8Codes,
    check_quantization,
    encode_codes,
    quantize_int8,
)

SIZES = [0, 3, 1, 0, 0, 7, 40, 0, 2, 5, 1, 0, 13, 0]  # empty pages everywhere
HAS_TORCH = importlib.util.find_spec("torch") is not None
BACKENDS = ["numpy", pytest.param("torch", marks=pytest.mark.skipif(not HAS_TORCH,
                                                                    reason="needs torch"))]


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _corpus(d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = _unit(rng, sum(SIZES), d)  # (N, d)
    offsets = np.concatenate(([0], np.cumsum(SIZES))).astype(np.int64)  # (P+1,)
    queries = [_unit(rng, 5, d), np.zeros((0, d), np.float32), _unit(rng, 2, d)]
    return vectors, offsets, queries


def _page_maxsim(sim) -> callable:
    """score[p] = sum_i max_j sim(q_i, v_j) over the rows of page p, by plain loops."""

    def score(query, vectors, offsets):
        out = []
        for p in range(len(offsets) - 1):
            page = vectors[offsets[p] : offsets[p + 1]]
            if len(page) == 0:
                out.append(-np.inf)
                continue
            out.append(sum(max(sim(q, v) for v in page) for q in query))
        return np.array(out)

    return score


def _hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(sum((x > 0) != (y > 0) for x, y in zip(a, b)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim", [24, 128, 13])  # 13: a last byte that is partly padding
@pytest.mark.parametrize("block_rows", [None, 1, 8])
def test_hamming_maxsim_equals_slow_reference(backend, dim, block_rows):
    vectors, offsets, queries = _corpus(dim)
    codes = BinaryCodes.encode(vectors, mode="hamming")
    got = codes.score_many(queries, offsets, backend=backend, block_rows=block_rows)
    ref = _page_maxsim(lambda q, v: (dim - 2 * _hamming(q, v)) / dim)
    for query, row in zip(queries, got):
        np.testing.assert_allclose(row, ref(query, vectors, offsets), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_asymmetric_binary_maxsim_equals_slow_reference(backend):
    dim = 32
    vectors, offsets, queries = _corpus(dim, seed=1)
    codes = BinaryCodes.encode(vectors)  # asymmetric is the default
    got = codes.score_many(queries, offsets, backend=backend)

    def sim(q, v):  # the int8 query against the +-1 sign vector, scaled to cosine range
        values, scale = quantize_int8(q[None, :])
        return float(scale[0] * values[0].astype(np.float64) @ np.where(v > 0, 1, -1)
                     / np.sqrt(dim))

    for query, row in zip(queries, got):
        np.testing.assert_allclose(row, _page_maxsim(sim)(query, vectors, offsets),
                                   rtol=1e-5, atol=1e-5)


def test_packed_bits_and_signs():
    v = np.array([[0.5, -0.1, 0.0, 2.0, -3.0, 1.0, 1.0, -1.0, 0.2]], np.float32)
    codes = BinaryCodes.encode(v)
    assert codes.bits.shape == (1, 2) and codes.nbytes == 2
    assert codes.bits[0, 0] == 0b10010110 and codes.bits[0, 1] == 0b10000000
    np.testing.assert_array_equal(codes.signs(), (v > 0).astype(np.uint8))


def test_int8_codes_roundtrip_and_dot_products_within_tolerance():
    rng = np.random.default_rng(2)
    v = _unit(rng, 500, 128)
    codes = Int8Codes.encode(v)
    assert codes.values.dtype == np.int8 and np.abs(codes.values).max() == 127
    assert codes.nbytes == 500 * 128 + 500 * 4
    # rounding moves each component by at most half a step
    err = np.abs(codes.decode() - v).max(axis=1)
    assert (err <= codes.scales / 2 + 1e-7).all()
    q = _unit(rng, 20, 128)
    exact = q @ v.T
    approx = q @ codes.decode().T
    assert np.abs(exact - approx).max() < 0.02
    values, scales = quantize_int8(np.zeros((2, 4), np.float32))  # zero rows stay zero
    assert (values == 0).all() and (scales == 1).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_maxsim_close_to_exact_and_backends_agree(backend):
    from retriever.search.scoring import maxsim_scores_many

    vectors, offsets, queries = _corpus(64, seed=3)
    codes = Int8Codes.encode(vectors)
    got = codes.score_many(queries, offsets, backend=backend, block_rows=16)
    exact = maxsim_scores_many(queries, vectors, offsets)
    finite = np.isfinite(exact)
    assert (np.isneginf(got) == ~finite).all()
    np.testing.assert_allclose(got[finite], exact[finite], atol=0.02 * 5)
    if HAS_TORCH:
        other = codes.score_many(queries, offsets, backend="numpy" if backend == "torch"
                                 else "torch")
        np.testing.assert_allclose(got, other, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["binary", "int8"])
def test_scoring_a_subset_of_pages(backend, kind):
    vectors, offsets, queries = _corpus(16, seed=4)
    codes = encode_codes(kind, vectors)
    everything = codes.score_many(queries, offsets, backend=backend)
    pages = np.array([12, 0, 6, 5, 6, 3])  # unsorted, repeated, empty pages included
    part = codes.score_many(queries, offsets, pages=pages, backend=backend, block_rows=4)
    np.testing.assert_allclose(part, everything[:, pages], rtol=1e-6)
    assert codes.score_many(queries, offsets, pages=np.array([], np.int64)).shape == (3, 0)


def test_errors():
    with pytest.raises(UsageError, match="quantization"):
        check_quantization("int4")
    with pytest.raises(UsageError, match="none"):
        encode_codes("none", np.zeros((1, 8), np.float32))
    with pytest.raises(RetrieverError, match="uint8"):
        BinaryCodes(np.zeros((2, 3), np.uint8), dim=8)
    with pytest.raises(UsageError, match="mode"):
        BinaryCodes.encode(np.ones((1, 8)), mode="cosine")
    codes = BinaryCodes.encode(np.ones((4, 8), np.float32))
    with pytest.raises(RetrieverError, match="offsets"):
        codes.score_many([np.ones((1, 8), np.float32)], np.array([0, 2]))
    with pytest.raises(RetrieverError, match="dim"):
        codes.score_many([np.ones((1, 9), np.float32)], np.array([0, 4]))
    with pytest.raises(RetrieverError, match="page indices"):
        codes.score_many([np.ones((1, 8), np.float32)], np.array([0, 4]), pages=np.array([1]))

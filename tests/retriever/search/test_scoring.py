"""retriever.search.scoring against a float64 reference loop, on ragged pages with empty ones."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.errors import RetrieverError
from retriever.search.scoring import maxsim_scores, maxsim_scores_many, top_k, vector_relevance


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _ragged(rng: np.random.Generator, sizes: list[int], d: int, dtype=np.float32):
    vectors = _unit(rng, sum(sizes), d).astype(dtype)  # (N, d)
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)  # (P+1,)
    return vectors, offsets


def _reference(queries: np.ndarray, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    q = queries.astype(np.float64)
    out = []
    for p in range(len(offsets) - 1):
        page = vectors[offsets[p] : offsets[p + 1]].astype(np.float64)
        if len(page) == 0:
            out.append(-np.inf)
            continue
        out.append(sum(max(float(qi @ v) for v in page) for qi in q))
    return np.array(out)


# empty pages first, last, consecutive and in between; one page bigger than a block
SIZES = [0, 3, 1, 0, 0, 7, 40, 0, 2, 5, 1, 0, 13, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("block_vectors", [None, 1, 8, 16])
@pytest.mark.parametrize("threads", [1, 2])
def test_maxsim_matches_reference(dtype, block_vectors, threads):
    rng = np.random.default_rng(0)
    vectors, offsets = _ragged(rng, SIZES, 24, dtype)
    queries = _unit(rng, 5, 24)
    got = maxsim_scores(queries, vectors, offsets, block_vectors=block_vectors, threads=threads)
    want = _reference(queries, vectors, offsets)
    assert got.dtype == np.float32 and got.shape == (len(SIZES),)
    empty = np.array(SIZES) == 0
    assert np.isneginf(got[empty]).all()
    np.testing.assert_allclose(got[~empty], want[~empty], rtol=1e-5, atol=1e-5)


def test_maxsim_random_ragged_many_pages():
    rng = np.random.default_rng(1)
    sizes = rng.integers(0, 30, size=300).tolist()
    vectors, offsets = _ragged(rng, sizes, 32, np.float16)
    queries = _unit(rng, 9, 32)
    got = maxsim_scores(queries, vectors, offsets, block_vectors=64)
    want = _reference(queries, vectors, offsets)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_many_queries_equal_single_queries():
    rng = np.random.default_rng(2)
    vectors, offsets = _ragged(rng, [4, 0, 6, 2, 9, 0, 1], 16)
    queries = [_unit(rng, n, 16) for n in (1, 3, 8)] + [np.zeros((0, 16), np.float32)]
    got = maxsim_scores_many(queries, vectors, offsets, block_vectors=5)
    assert got.shape == (4, 7)
    for i, q in enumerate(queries[:3]):
        np.testing.assert_allclose(got[i], maxsim_scores(q, vectors, offsets), rtol=1e-6)
    # a query without vectors scores 0 on every page that has vectors
    np.testing.assert_array_equal(got[3], np.where(np.array([4, 0, 6, 2, 9, 0, 1]) > 0, 0, -np.inf))


def test_degenerate_collections():
    q = np.eye(4, dtype=np.float32)[:2]
    assert maxsim_scores(q, np.zeros((0, 4), np.float32), np.array([0])).shape == (0,)
    all_empty = maxsim_scores(q, np.zeros((0, 4), np.float32), np.array([0, 0, 0]))
    assert np.isneginf(all_empty).all() and all_empty.shape == (2,)


@pytest.mark.parametrize(
    "offsets, vectors_n",
    [(np.array([1, 3]), 3), (np.array([0, 2]), 3), (np.array([0, 3, 2, 3]), 3),
     (np.array([[0, 3]]), 3), (np.array([0.0, 3.0]), 3)],
)
def test_bad_offsets_raise(offsets, vectors_n):
    with pytest.raises(RetrieverError):
        maxsim_scores(np.ones((1, 2), np.float32), np.ones((vectors_n, 2), np.float32), offsets)


def test_dim_mismatch_raises():
    with pytest.raises(RetrieverError, match="dim"):
        maxsim_scores(np.ones((1, 3), np.float32), np.ones((2, 2), np.float32), np.array([0, 2]))


def test_top_k_orders_and_breaks_ties_by_index():
    scores = np.array([0.5, 2.0, -np.inf, 2.0, 1.0, np.nan, 2.0, 0.5], dtype=np.float32)
    idx, best = top_k(scores, 4)
    assert idx.tolist() == [1, 3, 6, 4]
    np.testing.assert_array_equal(best, [2.0, 2.0, 2.0, 1.0])
    idx, _ = top_k(scores, 2)
    assert idx.tolist() == [1, 3]
    # ties at the cut: lower index wins
    idx, _ = top_k(scores, 5)
    assert idx.tolist() == [1, 3, 6, 4, 0]


def test_top_k_skips_unscorable_and_handles_small_k():
    scores = np.array([-np.inf, 3.0, -np.inf, 1.0])
    idx, best = top_k(scores, 10)
    assert idx.tolist() == [1, 3] and best.tolist() == [3.0, 1.0]
    assert top_k(scores, 0)[0].size == 0
    assert top_k(np.full(5, -np.inf), 3)[0].size == 0
    assert top_k(np.zeros(0), 3)[0].size == 0


def test_top_k_matches_full_sort_on_random_data():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 50, size=1000).astype(np.float32)  # many ties
    for k in (1, 7, 100, 999, 1000, 2000):
        idx, _ = top_k(scores, k)
        want = sorted(range(1000), key=lambda i: (-scores[i], i))[:k]
        assert idx.tolist() == want


def test_vector_relevance():
    rng = np.random.default_rng(4)
    q = _unit(rng, 3, 8)
    v = _unit(rng, 11, 8).astype(np.float16)
    want = np.array([max(float(qi @ vi.astype(np.float64)) for qi in q) for vi in v])
    np.testing.assert_allclose(vector_relevance(q, v), want, rtol=1e-5, atol=1e-6)
    assert vector_relevance(q, v[:0]).shape == (0,)
    assert np.isneginf(vector_relevance(q[:0], v)).all()


def test_serial_fallback_without_threadpoolctl(monkeypatch):
    from retriever.search import scoring

    rng = np.random.default_rng(5)
    vectors, offsets = _ragged(rng, SIZES * 3, 8)
    queries = [_unit(rng, 4, 8), _unit(rng, 2, 8)]
    threaded = maxsim_scores_many(queries, vectors, offsets, block_vectors=8, threads=2)
    monkeypatch.setattr(scoring, "_thread_limiter", lambda: None)
    serial = maxsim_scores_many(queries, vectors, offsets, block_vectors=8, threads=2)
    np.testing.assert_array_equal(threaded, serial)

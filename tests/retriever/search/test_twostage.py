"""Two-stage search (codes shortlist, exact rerank) and the per-page centroid stage."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.errors import RetrieverError
from retriever.search.prefilter import page_centroids
from retriever.search.scoring import maxsim_scores_many
from retriever.search.twostage import IVF_POOL, MAX_IVF_POOL, ArrayVectors, CodeIndex, \
    best_pages, default_candidates, default_rerank, ivf_pool, two_stage_search
from structured_pages import structured_corpus


def _flat(pages):
    vectors = np.concatenate(pages).astype(np.float32)  # (N, d)
    offsets = np.concatenate(([0], np.cumsum([len(p) for p in pages]))).astype(np.int64)
    return vectors, offsets


def _exact_top(queries, vectors, offsets, k):
    return [best_pages(row, k) for row in maxsim_scores_many(queries, vectors, offsets)]


@pytest.mark.parametrize("quantization", ["binary", "int8"])
@pytest.mark.parametrize("centroids", [0, 4])
def test_rerank_covering_every_page_equals_exact_search(quantization, centroids):
    rng = np.random.default_rng(0)
    sizes = rng.integers(0, 12, size=60)
    pages = [rng.standard_normal((n, 16)).astype(np.float32) for n in sizes]
    pages = [p / np.linalg.norm(p, axis=1, keepdims=True) if len(p) else p for p in pages]
    vectors, offsets = _flat(pages)
    index = CodeIndex.build(vectors, offsets, quantization, centroids=centroids)
    queries = [rng.standard_normal((n, 16)).astype(np.float32) for n in (1, 3, 7)]
    exact = maxsim_scores_many(queries, vectors, offsets)
    found = two_stage_search(index, queries, ArrayVectors(vectors, offsets), rerank=60,
                             candidates=60)
    for row, (got, scores) in zip(exact, found):
        want = best_pages(row, 60)  # pages without vectors are never returned
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(scores, row[want], rtol=1e-5)


@pytest.mark.parametrize("quantization", ["binary", "int8"])
def test_recall_with_the_centroid_stage_on_structured_pages(quantization):
    pages, queries, targets = structured_corpus(700, n_queries=12, seed=1)
    vectors, offsets = _flat(pages)
    index = CodeIndex.build(vectors, offsets, quantization, centroids=6)
    exact = _exact_top(queries, vectors, offsets, 10)
    # 700 pages > FULL_SCAN_PAGES: the centroid stage prunes before the codes run
    found = two_stage_search(index, queries, ArrayVectors(vectors, offsets), rerank=40,
                             candidates=80)
    recall = np.mean([len(set(e) & set(f[0][:10])) / 10 for e, f in zip(exact, found)])
    assert recall >= 0.9
    assert np.mean([f[0][0] == t for f, t in zip(found, targets)]) >= 0.9


def test_index_sizes_and_defaults():
    pages, _, _ = structured_corpus(20, n_vectors=30, dim=128)
    vectors, offsets = _flat(pages)
    binary = CodeIndex.build(vectors, offsets, "binary", centroids=4)
    assert binary.codes.nbytes == 600 * 16  # one bit per dimension
    # codes and the centroids' int8 codes with their scales (no float16 copy kept)
    assert binary.nbytes == 600 * 16 + 20 * 4 * (128 + 4) + offsets.nbytes
    assert binary.centroids is None and binary.centroid_vectors().shape == (80, 128)
    assert binary.n_pages == 20
    assert default_rerank("binary") >= default_rerank("int8") > 0
    assert default_rerank("none") == 0
    with pytest.raises(RetrieverError, match="rerank"):
        two_stage_search(binary, [vectors[:2]], ArrayVectors(vectors, offsets), rerank=0)
    assert two_stage_search(binary, [], ArrayVectors(vectors, offsets), rerank=5) == []


def test_candidates_stop_growing_before_the_ivf_pool():
    # up to the cap both follow the collection, one page in 64
    assert default_candidates(10_000) == 156
    assert ivf_pool(10_000, 156) == IVF_POOL * 156
    assert default_candidates(500) == 128 and ivf_pool(500, 128) == IVF_POOL * 128
    # past it the candidates stay at 512 while the pool keeps growing to its own cap
    assert default_candidates(100_000) == 512
    assert ivf_pool(100_000, 512) == MAX_IVF_POOL > IVF_POOL * 512
    assert ivf_pool(10_000_000, 512) == MAX_IVF_POOL
    # a caller asking for more candidates gets a pool that holds them
    assert ivf_pool(100_000, 2048) == IVF_POOL * 2048


def test_page_centroids():
    rng = np.random.default_rng(3)
    sizes = [0, 3, 20, 20, 9, 50]
    pages = [rng.standard_normal((n, 8)).astype(np.float32) for n in sizes]
    pages = [p / np.linalg.norm(p, axis=1, keepdims=True) if len(p) else p for p in pages]
    vectors, offsets = _flat(pages)
    cents, cent_offsets = page_centroids(vectors, offsets, 4)
    np.testing.assert_array_equal(np.diff(cent_offsets), [0, 3, 4, 4, 4, 4])
    assert cents.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(cents.astype(np.float32), axis=1), 1, atol=2e-3)
    # a page with no more vectors than centroids keeps its own vectors
    np.testing.assert_allclose(cents[:3], pages[1], atol=1e-3)
    again, _ = page_centroids(vectors, offsets, 4)
    np.testing.assert_array_equal(cents, again)  # deterministic
    # every vector of a page is close to some centroid of that page
    for p in (2, 5):
        sims = pages[p] @ cents[cent_offsets[p] : cent_offsets[p + 1]].astype(np.float32).T
        assert sims.max(axis=1).mean() > 0.4
    with pytest.raises(RetrieverError):
        page_centroids(vectors, offsets, 0)


def test_rank_pages_breaks_ties_by_index():
    scores = np.array([1.0, 3.0, -np.inf, 3.0, 2.0, 3.0], np.float32)
    np.testing.assert_array_equal(best_pages(scores, 2), [1, 3])
    np.testing.assert_array_equal(best_pages(scores, 10), [1, 3, 5, 4, 0])

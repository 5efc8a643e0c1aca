"""Pages held on a torch device: exact and two-stage MaxSim against the numpy reference.

These run on the CPU device (this machine has no GPU); the same code runs on CUDA, where
benchmarks/search_gpu.py measures it. bfloat16 is checked too: the half-precision path is
what a GPU search uses.
"""

from __future__ import annotations

import numpy as np
import pytest

from retriever.errors import UsageError
from retriever.search.device_pages import DevicePages, DeviceStore, resolve_device
from retriever.search.scoring import maxsim_scores
from structured_pages import structured_corpus

torch = pytest.importorskip("torch")


def ragged(seed: int = 0, n_pages: int = 120, dim: int = 16):
    """Pages of 0 to 40 vectors (some empty) back to back -> (vectors, offsets)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 40, size=n_pages)
    lengths[[3, 50]] = 0
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    v = rng.standard_normal((int(offsets[-1]), dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True), offsets


def fetcher(vectors: np.ndarray, offsets: np.ndarray):
    def fetch(positions: np.ndarray):
        counts = np.diff(offsets)[positions]
        rows = [vectors[offsets[p]:offsets[p + 1]] for p in positions]
        out = np.concatenate(rows) if rows else vectors[:0]
        return out, np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return fetch


def reference_top(q: np.ndarray, vectors: np.ndarray, offsets: np.ndarray, k: int):
    scores = maxsim_scores(q, vectors, offsets)
    return scores, np.argsort(-scores, kind="stable")[:k]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_exact_search_matches_the_reference_on_ragged_pages(dtype):
    vectors, offsets = ragged()
    pages = DevicePages.build(fetcher(vectors, offsets), offsets.size - 1, dim=16,
                              device="cpu", dtype=dtype)
    rng = np.random.default_rng(1)
    queries = [vectors[offsets[i]:offsets[i] + 4] + 0.05 * rng.standard_normal((4, 16))
               for i in (1, 20, 77)] + [vectors[:2]]  # a batch of two query lengths
    found = pages.search([q.astype(np.float32) for q in queries], 5)
    tolerance = 1e-4 if dtype == "float32" else 0.1  # bf16 keeps 8 bits of mantissa
    for q, (positions, scores) in zip(queries, found):
        want, top = reference_top(q.astype(np.float32), vectors, offsets, 5)
        np.testing.assert_allclose(scores, want[positions], atol=tolerance)
        if dtype == "float32":
            assert positions.tolist() == top.tolist()
        else:  # the best page is clear of the rest by far more than bf16's error
            assert positions[0] == top[0]
        assert 3 not in positions.tolist() and 50 not in positions.tolist()  # empty pages


def test_an_empty_query_scores_zero_on_pages_with_vectors():
    vectors, offsets = ragged()
    pages = DevicePages.build(fetcher(vectors, offsets), offsets.size - 1, dim=16,
                              device="cpu")
    positions, scores = pages.search([np.zeros((0, 16), np.float32)], 200)[0]
    lengths = np.diff(offsets)
    assert len(positions) == offsets.size - 1
    assert np.all(scores[lengths[positions] > 0] == 0)
    assert np.all(np.isneginf(scores[lengths[positions] == 0]))


def test_two_stage_finds_the_exact_top_pages_and_equals_exact_when_it_reranks_all():
    corpus, queries, targets = structured_corpus(300, n_vectors=40, dim=64, n_queries=10)
    vectors = np.concatenate(corpus)
    offsets = np.arange(len(corpus) + 1, dtype=np.int64) * 40
    store = DeviceStore(64, "cpu", centroids=8)
    pages = DevicePages(store, store.append(vectors, offsets))
    exact = pages.search(queries, 10)
    every = pages.search(queries, 10, rerank=len(corpus))
    assert [p.tolist() for p, _ in every] == [p.tolist() for p, _ in exact]
    shortlist = pages.search(queries, 10, rerank=60)  # a fifth of the pages, by centroids
    recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 10
                      for (a, _), (b, _) in zip(shortlist, exact)])
    assert recall >= 0.9
    assert [p[0] for p, _ in shortlist] == targets.tolist()
    for (positions, scores), q in zip(shortlist, queries):  # reranked scores are exact
        np.testing.assert_allclose(scores, maxsim_scores(q, vectors, offsets)[positions],
                                   atol=1e-4)


def test_a_view_after_a_commit_uploads_only_the_added_pages():
    vectors, offsets = ragged(n_pages=100)
    fetch = fetcher(vectors, offsets)
    first = DevicePages.build(fetch, 60, dim=16, device="cpu")
    kept = np.delete(np.arange(60), [5, 6])  # two pages deleted, 40 added
    moved = first.updated(kept, lambda pos: fetch(pos), np.arange(60, 100))
    assert moved is not None and moved.store is first.store
    assert moved.store.n_slots == 100  # the 60 uploaded first + the 40 added
    live = np.concatenate([kept, np.arange(60, 100)])  # the new view's pages, in order
    sub_vectors, sub_offsets = fetch(live)
    q = vectors[offsets[70]:offsets[70] + 3]
    positions, scores = moved.search([q], 8)[0]
    want, top = reference_top(q, sub_vectors, sub_offsets, 8)
    assert positions.tolist() == top.tolist()
    # the older view still sees its own 60 pages, although the store grew under it
    old_positions, _ = first.search([q], 60)[0]
    assert sorted(old_positions.tolist()) == list(range(60))


def test_a_view_that_would_keep_little_of_its_store_asks_for_a_fresh_build():
    vectors, offsets = ragged(n_pages=60)
    fetch = fetcher(vectors, offsets)
    pages = DevicePages.build(fetch, 60, dim=16, device="cpu")
    assert pages.updated(np.arange(10), fetch, np.zeros(0, np.int64)) is None


@pytest.mark.parametrize("device, message", [
    ("gpu7", "unknown device"),
    ("cuda", "not available"),
])
def test_a_bad_or_absent_device_is_a_usage_error(device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(UsageError, match=message):
        resolve_device(device)


def test_an_unknown_dtype_is_a_usage_error():
    with pytest.raises(UsageError, match="dtype"):
        resolve_device("cpu", "int4")

"""Exact search above the float32 cache's size: the stored pages streamed through the
kernel chunk by chunk give the cached copy's scores (to float32 rounding: BLAS sums a
block of another shape in another order), and no copy is built."""

from __future__ import annotations

import numpy as np
import pytest

from indexers.faiss import search as faiss_search
from retriever.search import scoring_torch
from tests.faiss_helpers import manifest, normalized, open_faiss, page, query


def _collection(tmp_path, rng, *, dtype="float16"):
    ix = open_faiss(tmp_path / "c", manifest("multi", 16), index_type="flat", dtype=dtype)
    # pages of varied lengths (one without any vector), in two commits, with a delete,
    # so the live pages lie in several segments with a gap
    lengths = [7, 1, 30, 12, 0, 5, 19, 3]
    ix.add([page(f"d{i}", normalized(rng.standard_normal((max(n, 1), 16)))[:n])
            for i, n in enumerate(lengths[:5])])
    ix.add([page(f"d{i}", normalized(rng.standard_normal((n, 16))))
            for i, n in enumerate(lengths[5:], start=5)])
    ix.delete(["d3"])
    return ix


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("chunk_vectors", [1, 20, 64, 10_000])
def test_streamed_scores_equal_the_cached_copy(tmp_path, dtype, chunk_vectors):
    rng = np.random.default_rng(3)
    ix = _collection(tmp_path, rng, dtype=dtype)
    view = ix._fresh()
    queries = [normalized(rng.standard_normal((n, 16))) for n in (4, 1, 9)]
    streamed = faiss_search.streamed_scores(view, queries, chunk_vectors=chunk_vectors)
    assert not view.has_exact()  # streaming built no copy of the collection
    vectors, offsets = view.exact_matrix()
    cached = faiss_search.maxsim_scores_many(queries, vectors, offsets)
    np.testing.assert_allclose(streamed, cached, rtol=0, atol=1e-6)
    assert np.isneginf(streamed[:, np.asarray(view.counts) == 0]).all()  # the empty page


def test_search_streams_above_the_cache_size(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    ix = _collection(tmp_path, rng)
    q = query(normalized(rng.standard_normal((5, 16))))
    cached_hits = ix.search([q], 5)[0]  # small: the float32 copy is built and used
    ix.close()
    monkeypatch.setattr(faiss_search, "EXACT_CACHE_BYTES", 0)
    monkeypatch.setattr(faiss_search, "STREAM_VECTORS", 16)
    reopened = open_faiss(tmp_path / "c")
    streamed_hits = reopened.search([q], 5)[0]
    assert not reopened._fresh().has_exact()
    assert [h.key for h in streamed_hits] == [h.key for h in cached_hits]
    np.testing.assert_allclose([h.score for h in streamed_hits],
                               [h.score for h in cached_hits], rtol=0, atol=1e-6)
    assert "d3:1" not in {h.key for h in streamed_hits}  # deleted pages stay gone


def test_streaming_without_torch_casts_with_numpy(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    ix = _collection(tmp_path, rng)
    view = ix._fresh()
    queries = [normalized(rng.standard_normal((3, 16)))]
    with_torch = faiss_search.streamed_scores(view, queries, chunk_vectors=32)
    monkeypatch.setenv("RETRIEVER_KERNEL", "numpy")
    without = faiss_search.streamed_scores(view, queries, chunk_vectors=32)
    np.testing.assert_array_equal(with_torch, without)


def test_float32_copy_is_exact_and_checks_its_buffer():
    half = np.random.default_rng(6).standard_normal((33, 8)).astype(np.float16)
    out = np.empty((33, 8), np.float32)
    assert scoring_torch.float32_copy(half, out) is out
    np.testing.assert_array_equal(out, half.astype(np.float32))
    with pytest.raises(Exception, match="float32_copy"):
        scoring_torch.float32_copy(half, np.empty((32, 8), np.float32))

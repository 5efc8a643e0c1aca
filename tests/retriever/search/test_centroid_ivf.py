"""The IVF coarse stage over page centroids (FAISS), against the brute-force scan."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from retriever.search.prefilter import page_centroids  # noqa: E402
from retriever.search.scoring import maxsim_scores_many  # noqa: E402
from retriever.search.centroid_ivf import CentroidIVF  # noqa: E402
from retriever.search.twostage import ArrayVectors, CodeIndex, best_pages, two_stage_search  # noqa: E402
from structured_pages import structured_corpus  # noqa: E402


def _flat(pages):
    vectors = np.concatenate(pages).astype(np.float32)
    offsets = np.concatenate(([0], np.cumsum([len(p) for p in pages]))).astype(np.int64)
    return vectors, offsets


def test_probing_every_list_for_every_centroid_is_the_exact_centroid_maxsim():
    pages, queries, _ = structured_corpus(60, n_queries=4, seed=2)
    vectors, offsets = _flat(pages)
    cents, cent_offsets = page_centroids(vectors, offsets, 4)
    ivf = CentroidIVF.build(cents, cent_offsets, nlist=8)
    n_cents = len(cents)
    got = ivf.candidates(queries, 10, token_k=n_cents, nprobe=8)
    exact = maxsim_scores_many(queries, cents.astype(np.float32), cent_offsets)
    for row, pages_found in zip(exact, got):
        want = best_pages(row, 10)
        # float16 centroids scored in float32 by both: the same ranking, near-ties aside
        np.testing.assert_allclose(row[pages_found], row[want], rtol=1e-5)


def test_the_ivf_stage_keeps_recall_on_structured_pages():
    pages, queries, targets = structured_corpus(700, n_queries=12, seed=1)
    vectors, offsets = _flat(pages)
    index = CodeIndex.build(vectors, offsets, "binary", centroids=6)
    index.coarse = "ivf"
    assert index.coarse_stage() == "ivf"
    exact = [best_pages(row, 10) for row in maxsim_scores_many(queries, vectors, offsets)]
    found = two_stage_search(index, queries, ArrayVectors(vectors, offsets), rerank=40,
                             candidates=80)
    recall = np.mean([len(set(e) & set(f[0][:10])) / 10 for e, f in zip(exact, found)])
    assert recall >= 0.9
    assert np.mean([f[0][0] == t for f, t in zip(found, targets)]) >= 0.9
    assert index.nbytes > index.codes.nbytes  # the IVF is counted in what stays in RAM


def test_small_collections_skip_the_stage_and_pages_no_query_vector_found_are_left_out():
    pages, queries, _ = structured_corpus(40, n_queries=2, seed=3)
    vectors, offsets = _flat(pages)
    index = CodeIndex.build(vectors, offsets, "binary", centroids=4)
    assert index.coarse_stage() == "none"  # so few pages that every page's codes are scored
    index.coarse = "scan"
    assert index.coarse_stage() == "none"
    ivf = CentroidIVF.build(index.centroid_vectors(), index.centroid_offsets, nlist=4)
    found = ivf.candidates(queries, 1000, token_k=3, nprobe=1)
    for pages_found, q in zip(found, queries):
        assert 0 < pages_found.size <= 3 * len(q)
        assert np.unique(pages_found).size == pages_found.size

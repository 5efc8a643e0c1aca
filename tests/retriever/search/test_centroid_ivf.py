"""The IVF coarse stage over page centroids (FAISS), against the brute-force scan."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("faiss")

from retriever.search.prefilter import page_centroids  # noqa: E402
from retriever.search.scoring import maxsim_scores_many  # noqa: E402
from retriever.search.centroid_ivf import CentroidIVF, SearchAddLock  # noqa: E402
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


def test_searches_hold_the_index_together_and_an_addition_alone():
    lock = SearchAddLock()
    both_in = threading.Barrier(2, timeout=5)  # breaks unless two searches are inside at once
    events: list[str] = []

    def search(name: str) -> None:
        with lock.searching():
            both_in.wait()
            events.append(f"{name} in")
            release.wait(5)
            events.append(f"{name} out")

    release = threading.Event()
    readers = [threading.Thread(target=search, args=(n,)) for n in ("a", "b")]
    for t in readers:
        t.start()
    deadline = time.monotonic() + 5
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(events) == ["a in", "b in"]  # both searches inside at once

    def add() -> None:
        with lock.adding():
            events.append("add")

    writer = threading.Thread(target=add)
    writer.start()
    time.sleep(0.1)
    assert "add" not in events  # waits for the searches

    def late_search() -> None:
        with lock.searching():
            events.append("late")

    late = threading.Thread(target=late_search)
    late.start()
    time.sleep(0.1)
    assert "late" not in events  # a search arriving behind a waiting addition waits too
    release.set()
    for t in (*readers, writer, late):
        t.join(5)
    assert events.index("add") > max(events.index("a out"), events.index("b out"))
    assert events.index("late") > events.index("add")


def test_concurrent_candidates_equal_serial_ones_while_pages_are_added():
    pages, queries, _ = structured_corpus(300, 40, seed=11)
    cents, cent_offsets = page_centroids(*_flat(pages), 4)
    ivf = CentroidIVF.build(cents[: cent_offsets[200]], cent_offsets[:201], nlist=8)
    # every list probed, every centroid kept: the additions cannot push old ones out
    every = dict(token_k=10_000, nprobe=8)
    serial = [ivf.candidates([q], 20, **every) for q in queries]
    with ThreadPoolExecutor(4) as pool:
        found = [pool.submit(ivf.candidates, [q], 20, **every) for q in queries * 4]
        grown = ivf.updated(np.arange(200), cents[cent_offsets[200]:],
                            cent_offsets[200:] - cent_offsets[200])
        results = [f.result() for f in found]
    for i, got in enumerate(results):  # the old snapshot ignores the added ids
        np.testing.assert_array_equal(got[0], serial[i % len(queries)][0])
    assert grown is not None and grown.n_pages == 300

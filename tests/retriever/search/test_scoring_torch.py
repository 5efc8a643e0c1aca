"""The torch MaxSim kernel and the backend dispatch, against a float64 reference loop."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from repo_paths import REPO
from retriever.errors import RetrieverError
from retriever.search.ragged import page_rows, plan_blocks
from retriever.search.scoring_torch import exact_maxsim_many, resolve_backend

pytest.importorskip("torch")

from retriever.search.scoring_torch import maxsim_many_torch  # noqa: E402

SIZES = [0, 3, 1, 0, 0, 7, 40, 0, 2, 5, 1, 0, 13, 0]


def _ragged(rng, sizes, d, dtype=np.float32):
    x = rng.standard_normal((sum(sizes), d)).astype(np.float32)
    vectors = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)  # (N, d)
    return vectors, np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)


def _reference(query, vectors, offsets):
    q = query.astype(np.float64)
    out = []
    for p in range(len(offsets) - 1):
        page = vectors[offsets[p] : offsets[p + 1]].astype(np.float64)
        out.append((q @ page.T).max(axis=1).sum() if len(page) else -np.inf)
    return np.array(out)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("block_rows", [None, 1, 8, 16])
@pytest.mark.parametrize("threads", [None, 1])
def test_torch_kernel_matches_reference(dtype, block_rows, threads):
    rng = np.random.default_rng(0)
    vectors, offsets = _ragged(rng, SIZES, 24, dtype)
    queries = [rng.standard_normal((5, 24)).astype(np.float32),
               np.zeros((0, 24), np.float32), rng.standard_normal((1, 24)).astype(np.float32)]
    got = maxsim_many_torch(queries, vectors, offsets, block_rows=block_rows, threads=threads)
    assert got.shape == (3, len(SIZES)) and got.dtype == np.float32
    empty = np.array(SIZES) == 0
    for query, row in zip(queries, got):
        want = _reference(query, vectors, offsets) if len(query) else np.where(empty, -np.inf, 0)
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-5)


def test_uniform_pages_and_subsets_agree_with_numpy():
    rng = np.random.default_rng(1)
    vectors, offsets = _ragged(rng, [30] * 40 + [0] + [30] * 9, 16)
    queries = [rng.standard_normal((4, 16)).astype(np.float32) for _ in range(3)]
    torch_all = exact_maxsim_many(queries, vectors, offsets, backend="torch")
    numpy_all = exact_maxsim_many(queries, vectors, offsets, backend="numpy")
    np.testing.assert_allclose(torch_all, numpy_all, rtol=1e-5, atol=1e-5)
    pages = np.array([49, 3, 40, 3, 17])
    for backend in ("torch", "numpy"):
        part = exact_maxsim_many(queries, vectors, offsets, pages=pages, backend=backend)
        np.testing.assert_allclose(part, numpy_all[:, pages], rtol=1e-5, atol=1e-5)


def test_memmap_storage(tmp_path):
    rng = np.random.default_rng(2)
    vectors, offsets = _ragged(rng, [12, 0, 7, 30], 8, np.float16)
    path = tmp_path / "v.f16"
    vectors.tofile(path)
    mapped = np.memmap(path, dtype=np.float16, mode="r", shape=vectors.shape)
    query = rng.standard_normal((3, 8)).astype(np.float32)
    got = maxsim_many_torch([query], mapped, offsets)[0]
    np.testing.assert_allclose(got, _reference(query, vectors, offsets), rtol=1e-5, atol=1e-5)


def test_block_plans():
    offsets = np.array([0, 3, 3, 7, 8, 20, 20], np.int64)  # lengths 3 0 4 1 12 0
    blocks = plan_blocks(offsets, 4)
    assert sum(b.n_pages for b in blocks) == 4  # empty pages are left out
    assert all(b.lengths.min() > 0 for b in blocks)
    assert [b.rows for b in blocks][0] == slice(0, 3)
    sub = plan_blocks(offsets, 100, np.array([4, 0, 1]))  # subset, one block
    assert len(sub) == 1 and list(sub[0].out) == [1, 0] and sub[0].uniform is None
    np.testing.assert_array_equal(page_rows(offsets, np.array([2, 0])), [3, 4, 5, 6, 0, 1, 2])
    with pytest.raises(RetrieverError):
        plan_blocks(offsets, 0)


def test_backend_names_and_env_override(monkeypatch):
    assert resolve_backend("auto") == "torch"
    monkeypatch.setenv("RETRIEVER_KERNEL", "numpy")
    assert resolve_backend("auto") == "numpy"
    with pytest.raises(RetrieverError, match="backend"):
        resolve_backend("cuda")


def test_importing_the_kernels_does_not_import_torch():
    code = ("import sys, retriever, retriever.search.scoring_torch, retriever.search.quantization, "
            "retriever.search.twostage, retriever.search.prefilter; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_small_searches_do_not_import_torch_for_the_kernel(monkeypatch):
    """A cold text-collection search stays on numpy rather than pay torch's import."""
    import sys

    from retriever.search import scoring_torch

    small_q, small_v = [np.ones((1, 384), np.float32)], np.ones((40_000, 384), np.float32)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert scoring_torch._small_for_torch(small_q, small_v)
    big_q = [np.ones((32, 128), np.float32)]
    big_v = np.broadcast_to(np.ones((1, 128), np.float32), (1_000_000, 128))  # no memory
    assert not scoring_torch._small_for_torch(big_q, big_v)  # ColPali-sized: torch is worth it

"""The code kernels' matmul path: measured per host, forceable, and equal either way."""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from retriever.search import quantization_torch  # noqa: E402
from retriever.errors import UsageError  # noqa: E402
from retriever.search.quantization import BinaryCodes, Int8Codes  # noqa: E402
from retriever.search.scoring_torch import torch_threads  # noqa: E402

HAS_INT_MM = quantization_torch._has_int_mm()
PATHS = ["float32", pytest.param("int8", marks=pytest.mark.skipif(
    not HAS_INT_MM, reason="this torch has no int8 matmul"))]


def _corpus(seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 40, size=50)
    vectors = rng.standard_normal((int(sizes.sum()), 128)).astype(np.float32)
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    queries = [rng.standard_normal((n, 128)).astype(np.float32) for n in (32, 5)]
    return vectors, offsets, queries


def test_the_probe_picks_a_path_once_and_the_variable_forces_one(monkeypatch):
    monkeypatch.delenv("RETRIEVER_CODE_MATMUL", raising=False)
    picked = quantization_torch.code_matmul_path()
    assert picked in quantization_torch.CODE_MATMUL_PATHS
    assert quantization_torch.code_matmul_path() == picked  # cached: measured once
    monkeypatch.setenv("RETRIEVER_CODE_MATMUL", "float32")
    assert quantization_torch.code_matmul_path() == "float32"
    monkeypatch.setenv("RETRIEVER_CODE_MATMUL", "bf16")
    with pytest.raises(UsageError, match="RETRIEVER_CODE_MATMUL"):
        quantization_torch.code_matmul_path()


@pytest.mark.parametrize("kind", ["binary", "int8"])
def test_every_path_gives_the_same_scores(monkeypatch, kind):
    vectors, offsets, queries = _corpus()
    codes = BinaryCodes.encode(vectors) if kind == "binary" else Int8Codes.encode(vectors)
    kernels = quantization_torch.BINARY_KERNELS if kind == "binary" else ("unpack",)
    got = {}
    for path in ["float32"] + (["int8"] if HAS_INT_MM else []):
        monkeypatch.setenv("RETRIEVER_CODE_MATMUL", path)
        for kernel in kernels:
            monkeypatch.setenv("RETRIEVER_BINARY_KERNEL", kernel)
            got[path, kernel] = codes.score_many(queries, offsets, backend="torch",
                                                 block_rows=64)
    numpy_scores = codes.score_many(queries, offsets, backend="numpy")
    assert len(got) == len(kernels) * (1 + HAS_INT_MM)
    for scores in got.values():
        # integer dot products are exact on every path; only the float scaling differs
        np.testing.assert_allclose(scores, numpy_scores, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mode", ["asymmetric", "hamming"])
@pytest.mark.parametrize("dim", [128, 20])  # 20: the last byte's padding bits stay unset
def test_the_byte_lookup_equals_the_unpacked_dot_products(mode, dim):
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((300, dim)).astype(np.float32)
    codes = BinaryCodes.encode(vectors, mode)
    q_codes, _ = codes.query_codes(rng.standard_normal((7, dim)).astype(np.float32))
    table, offsets = quantization_torch.byte_tables(q_codes)
    got = quantization_torch.lookup_dots(codes.bits, table, offsets)
    want = codes.signs().astype(np.int64) @ q_codes.T.astype(np.int64)  # (300, 7)
    np.testing.assert_array_equal(got.numpy(), want)


def test_the_binary_kernel_probe_picks_once_and_the_variable_forces_one(monkeypatch):
    monkeypatch.delenv("RETRIEVER_BINARY_KERNEL", raising=False)
    picked = quantization_torch.binary_kernel()
    assert picked in quantization_torch.BINARY_KERNELS
    assert quantization_torch.binary_kernel() == picked  # cached: measured once
    for kernel in quantization_torch.BINARY_KERNELS:
        monkeypatch.setenv("RETRIEVER_BINARY_KERNEL", kernel)
        assert quantization_torch.binary_kernel() == kernel
    monkeypatch.setenv("RETRIEVER_BINARY_KERNEL", "popcount")
    with pytest.raises(UsageError, match="RETRIEVER_BINARY_KERNEL"):
        quantization_torch.binary_kernel()


def test_a_read_only_memory_map_is_looked_up_without_a_writable_copy(tmp_path):
    rng = np.random.default_rng(6)
    codes = BinaryCodes.encode(rng.standard_normal((50, 128)).astype(np.float32))
    path = tmp_path / "bits.npy"
    np.save(path, codes.bits)
    mapped = np.load(path, mmap_mode="r")
    assert not mapped.flags.writeable
    q_codes, _ = codes.query_codes(rng.standard_normal((3, 128)).astype(np.float32))
    table, offsets = quantization_torch.byte_tables(q_codes)
    got = quantization_torch.lookup_dots(mapped[10:40], table, offsets)
    want = codes.signs(slice(10, 40)).astype(np.int64) @ q_codes.T.astype(np.int64)
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("path", PATHS)
def test_int_matmul_on_each_path_is_exact(path):
    rng = np.random.default_rng(3)
    a = torch.from_numpy(rng.integers(-127, 128, (64, 128), dtype=np.int8))
    b = torch.from_numpy(rng.integers(-127, 128, (128, 32), dtype=np.int8))
    want = a.numpy().astype(np.int64) @ b.numpy().astype(np.int64)
    got = quantization_torch.int_matmul(a, b, path)
    assert got.dtype == torch.int32
    np.testing.assert_array_equal(got.numpy(), want)


def test_overlapping_thread_settings_do_not_serialise_searches():
    before = torch.get_num_threads()
    inside = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def search() -> None:
        with torch_threads(1):
            try:  # both are inside at once: nothing holds a lock across the body
                inside.wait()
            except threading.BrokenBarrierError as exc:
                errors.append(exc)

    workers = [threading.Thread(target=search) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=20)
    assert not any(w.is_alive() for w in workers) and not errors
    assert torch.get_num_threads() == before  # the last one out restored it

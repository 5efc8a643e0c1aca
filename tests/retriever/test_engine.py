"""The batched encoding engine: order, batching, overlap, OOM backoff, CPU byte bound."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from repo_paths import REPO
from retriever.engine import EncodingEngine, PreparedBatch, resolve_device, resolve_dtype
from retriever.errors import RetrieverError, UsageError

torch = pytest.importorskip("torch")


def _prepare_sizes(items: list[int]) -> PreparedBatch:
    return PreparedBatch({"x": torch.tensor(items, dtype=torch.float64)}, list(items))


def test_auto_device_and_dtype_on_a_cpu_machine():
    engine = EncodingEngine()
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert engine.device.type == expected
    if expected == "cpu":
        assert engine.dtype == torch.float32


def test_device_and_dtype_strings():
    cpu = resolve_device("cpu")
    assert cpu == torch.device("cpu")
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype("float16", cpu) == torch.float16
    assert resolve_dtype("torch.float32", cpu) == torch.float32
    assert resolve_dtype("auto", cpu) == torch.float32
    with pytest.raises(UsageError):
        resolve_dtype("int3", cpu)
    with pytest.raises(UsageError):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(UsageError):
        EncodingEngine(device="cpu", batch_size=0)


def test_results_come_back_in_the_original_order_after_size_sorting():
    sizes = [3, 9, 1, 7, 7, 2, 8, 5, 4, 6, 0]
    seen_batches: list[list[int]] = []

    def forward(batch: PreparedBatch) -> list[str]:
        seen_batches.append(list(batch.meta))
        return [f"item-{m}" for m in batch.meta]

    engine = EncodingEngine(device="cpu", batch_size=3)
    out = engine.run(sizes, _prepare_sizes, forward, size_of=float)
    assert out == [f"item-{s}" for s in sizes]
    flat = [m for b in seen_batches for m in b]
    assert flat == sorted(sizes, reverse=True)  # largest first, similar sizes together
    assert [len(b) for b in seen_batches] == [3, 3, 3, 2]


def test_without_size_of_items_keep_their_order_and_empty_input_is_fine():
    engine = EncodingEngine(device="cpu")
    order: list[int] = []

    def forward(batch: PreparedBatch) -> list[int]:
        order.extend(batch.meta)
        return list(batch.meta)

    items = [5, 1, 4]
    assert engine.run(items, _prepare_sizes, forward, default_batch_size=2) == items
    assert order == items
    assert engine.run([], _prepare_sizes, forward) == []


def test_floats_are_cast_to_the_engine_dtype_and_integers_kept():
    engine = EncodingEngine(device="cpu", dtype="bfloat16")
    got: dict[str, torch.dtype] = {}

    def prepare(items: list[int]) -> PreparedBatch:
        return PreparedBatch({"pixels": torch.zeros(len(items), 3),
                              "ids": torch.zeros(len(items), dtype=torch.long)}, items)

    def forward(batch: PreparedBatch) -> list[int]:
        got.update({k: v.dtype for k, v in batch.tensors.items()})
        assert not torch.is_grad_enabled() and torch.is_inference_mode_enabled()
        return batch.meta

    engine.run([1, 2], prepare, forward)
    assert got == {"pixels": torch.bfloat16, "ids": torch.long}


class _TinyModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 4, stride=4)
        self.proj = torch.nn.Linear(8, 6)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.conv(pixels).flatten(2).transpose(1, 2)  # (b, n_patches, 8)
        return torch.nn.functional.normalize(self.proj(torch.relu(x)), dim=-1)  # (b, n, 6)


def test_results_do_not_depend_on_the_batch_size():
    model = _TinyModel().eval()
    rng = np.random.default_rng(0)
    images = [rng.random((3, 16, 16), dtype=np.float32) for _ in range(7)]

    def prepare(items: list[np.ndarray]) -> PreparedBatch:
        return PreparedBatch({"pixels": torch.from_numpy(np.stack(items))}, [None] * len(items))

    def forward(batch: PreparedBatch) -> list[np.ndarray]:
        out = model(batch.tensors["pixels"])  # (b, 16, 6)
        return [row.float().cpu().numpy() for row in out]

    results = [EncodingEngine(device="cpu", batch_size=bs).run(images, prepare, forward)
               for bs in (1, 3, 7)]
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(a, b, atol=1e-6)
    direct = model(torch.from_numpy(images[4][None]))[0].detach().numpy()
    np.testing.assert_allclose(results[1][4], direct, atol=1e-6)


def test_the_next_batch_is_prepared_while_the_current_one_runs():
    # forward of batch 0 waits until prepare of batch 1 has started: without a background
    # prepare this would time out (the event would never be set).
    next_started = threading.Event()
    prepared: list[int] = []
    overlapped: list[bool] = []

    def prepare(items: list[int]) -> PreparedBatch:
        prepared.append(items[0])
        if items[0] == 2:
            next_started.set()
        return _prepare_sizes(items)

    def forward(batch: PreparedBatch) -> list[int]:
        if batch.meta[0] == 0:
            overlapped.append(next_started.wait(timeout=30))
        return list(batch.meta)

    engine = EncodingEngine(device="cpu", batch_size=2, prefetch=1)
    assert engine.run(list(range(6)), prepare, forward) == list(range(6))
    assert overlapped == [True]
    assert prepared == [0, 2, 4]


def test_prepare_runs_off_the_calling_thread():
    threads: set[str] = set()

    def prepare(items: list[int]) -> PreparedBatch:
        threads.add(threading.current_thread().name)
        return _prepare_sizes(items)

    EncodingEngine(device="cpu", batch_size=1).run([1, 2, 3], prepare, lambda b: b.meta)
    assert threading.current_thread().name not in threads


def test_out_of_memory_halves_the_batch_and_retries():
    calls: list[int] = []

    def forward(batch: PreparedBatch) -> list[int]:
        size = len(batch.meta)
        calls.append(size)
        if size > 2:
            raise torch.cuda.OutOfMemoryError("simulated: CUDA out of memory")
        return [m * 10 for m in batch.meta]

    progress: list[tuple[int, int]] = []
    engine = EncodingEngine(device="cpu", batch_size=8, progress=lambda d, t: progress.append((d, t)))
    items = list(range(11))
    assert engine.run(items, _prepare_sizes, forward) == [i * 10 for i in items]
    assert calls[:3] == [8, 4, 2]  # 8 fails, 4 fails, 2 works
    assert max(calls[3:]) == 2  # the smaller size is kept for the rest of the run
    assert progress[-1] == (11, 11)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_out_of_memory_with_one_item_is_a_clear_error():
    def forward(batch: PreparedBatch) -> list[int]:
        raise torch.cuda.OutOfMemoryError("simulated")

    with pytest.raises(RetrieverError, match="out of GPU memory"):
        EncodingEngine(device="cpu", batch_size=4).run([1, 2, 3], _prepare_sizes, forward)


def test_cpu_batches_stay_under_the_byte_bound():
    per_item = 1000 * 4  # float32 bytes per prepared item
    sizes: list[int] = []

    def prepare(items: list[int]) -> PreparedBatch:
        return PreparedBatch({"pixels": torch.zeros(len(items), 1000)}, list(items))

    def forward(batch: PreparedBatch) -> list[int]:
        sizes.append(len(batch.meta))
        assert batch.tensors["pixels"].nelement() * 4 <= 3 * per_item
        return list(batch.meta)

    engine = EncodingEngine(device="cpu", batch_size=16, max_batch_bytes=3 * per_item)
    items = list(range(10))
    assert engine.run(items, prepare, forward) == items
    assert sizes == [3, 3, 3, 1]
    # one item bigger than the bound still runs (alone)
    tiny = EncodingEngine(device="cpu", batch_size=4, max_batch_bytes=10)
    assert tiny.run([1, 2], prepare, lambda b: list(b.meta)) == [1, 2]


def test_errors_from_prepare_and_forward_surface():
    def bad_prepare(items: list[int]) -> PreparedBatch:
        if 3 in items:
            raise ValueError("broken page")
        return _prepare_sizes(items)

    engine = EncodingEngine(device="cpu", batch_size=2)
    with pytest.raises(ValueError, match="broken page"):
        engine.run([1, 2, 3, 4], bad_prepare, lambda b: list(b.meta))
    with pytest.raises(RetrieverError, match="forward returned 1 results"):
        engine.run([1, 2], _prepare_sizes, lambda b: [0])
    with pytest.raises(RetrieverError, match="PreparedBatch"):
        engine.run([1], lambda items: {"x": 1}, lambda b: [0])  # type: ignore[arg-type,return-value]


def test_importing_the_engine_does_not_import_torch():
    import subprocess

    code = "import retriever.engine, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.strip()
    assert out == "False"


def test_cuda_absence_is_known_without_importing_torch():
    # A fresh process: this one has torch imported already.
    import os
    import subprocess

    code = ("import sys; from retriever.engine import cuda_may_be_present as present; "
            "print(present(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO, env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"})
    assert out.stdout.split() == ["False", "False"]

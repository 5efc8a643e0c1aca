"""How much more work this host does with several threads than with one.

Printed beside the concurrent-search rows, because their ratio cannot exceed what the
host itself allows: if two threads do 2x the matmul work but the memory copies of one,
searches that already keep both cores and the memory bus busy gain little from more
threads. Each worker is a Python thread running single-threaded torch or numpy (both
release the GIL), measured the way the searchers run.
"""

from __future__ import annotations

__all__ = ["host_scaling"]

import os
import threading
import time
from collections.abc import Callable

import numpy as np


def _throughput(work: Callable[[int], None], workers: int, repeats: int) -> float:
    """Calls per second from ``workers`` threads, thread i calling ``work(i)`` ``repeats``
    times."""
    def loop(i: int) -> None:
        for _ in range(repeats):
            work(i)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return workers * repeats / (time.perf_counter() - start)


def _ratio(work: Callable[[int], None], workers: int, repeats: int, rounds: int = 3
           ) -> float:
    """Median over ``rounds`` of (throughput from ``workers`` threads) / (from one),
    the two measured one after the other so a noisy neighbour hits both alike."""
    for i in range(workers):  # warm-up: first-touch pages, lazy initialisation
        work(i)
    ratios = [_throughput(work, workers, repeats) / _throughput(work, 1, repeats)
              for _ in range(rounds)]
    return float(np.median(ratios))


def host_scaling(workers: int | None = None) -> dict[str, float]:
    """``{"workers", "matmul", "memory"}``: the throughput of ``workers`` threads (default:
    the usable cores) over one thread's, for a float32 matmul of a 16-page ColPali block
    by 32 query vectors (compute), and for copying 64 MiB (memory bandwidth)."""
    import torch

    if workers is None:
        workers = max(1, len(os.sched_getaffinity(0)))
    block = torch.randn(16 * 1030, 128)
    q_t = torch.randn(128, 32)
    source = np.ones(64 << 20, np.uint8)
    targets = [np.empty_like(source) for _ in range(workers)]  # one per worker

    def matmul(_: int) -> None:
        block @ q_t

    def copy(i: int) -> None:
        np.copyto(targets[i], source)

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # each worker single-threaded, as the search kernels run
    try:
        with torch.inference_mode():
            matmul_ratio = _ratio(matmul, workers, repeats=40)
        memory_ratio = _ratio(copy, workers, repeats=8)
    finally:
        torch.set_num_threads(before)
    return {"workers": workers, "matmul": round(matmul_ratio, 2),
            "memory": round(memory_ratio, 2)}

"""The 100k-page leg of benchmarks/search.py: build codes without holding the pages.

100k ColPali pages are 53 GB in float32 and 26 GB in float16, more than this machine's
24 GB of memory. So the pages are generated a chunk at a time and each chunk is used at
once: its exact float32 scores for every benchmark query (the recall reference), its
binary codes and page centroids (kept in memory), and its float16 vectors (appended to a
memmap on disk, where stage 2 reads the shortlisted pages). Only codes, centroids and the
(queries, pages) exact scores stay in memory.
"""

from __future__ import annotations

__all__ = ["StreamedIndex", "build_streamed"]

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retriever.search.prefilter import page_centroids
from retriever.search.quantization import BinaryCodes
from retriever.search.scoring_torch import maxsim_many_torch
from retriever.search.twostage import ArrayVectors, CodeIndex
from synthetic import Corpus


@dataclass
class StreamedIndex:
    index: CodeIndex
    vectors: ArrayVectors  # float16 memmap on disk
    exact: np.ndarray  # (n_queries, P) exact float32 MaxSim, the recall reference
    disk_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)  # per build step


def build_streamed(corpus: Corpus, queries: list[np.ndarray], workdir: Path,
                   centroids: int, log=print) -> StreamedIndex:
    n_pages, n, d = corpus.n_pages, corpus.n_vectors, corpus.dim
    path = workdir / f"vectors-{n_pages}.f16"
    out = path.open("wb")  # plain writes: a writable memmap would count 26 GB as our RSS
    bits = np.empty((n_pages * n, (d + 7) // 8), np.uint8)  # (N, d/8)
    cents = np.empty((n_pages * centroids, d), np.float16)  # (P*m, d)
    exact = np.empty((len(queries), n_pages), np.float32)  # (n_queries, P)
    seconds = dict.fromkeys(("generate", "exact", "codes", "centroids", "write"), 0.0)
    clock = time.perf_counter()
    last_log = clock
    for c in range(corpus.n_chunks):
        t0 = time.perf_counter()
        pages = corpus.chunk(c)[0]  # (B, n, d) float32
        start, b = c * corpus.chunk_pages, pages.shape[0]
        flat = pages.reshape(-1, d)  # (B*n, d)
        local = np.arange(b + 1, dtype=np.int64) * n  # (B+1,)
        rows = slice(start * n, (start + b) * n)
        t1 = time.perf_counter()
        exact[:, start : start + b] = maxsim_many_torch(queries, flat, local)
        t2 = time.perf_counter()
        bits[rows] = BinaryCodes.encode(flat).bits
        t3 = time.perf_counter()
        c_vecs, _ = page_centroids(flat, local, centroids)  # every page has n > m vectors
        cents[start * centroids : (start + b) * centroids] = c_vecs
        t4 = time.perf_counter()
        out.write(flat.astype(np.float16).tobytes())  # appended in page order
        t5 = time.perf_counter()
        for key, dt in zip(seconds, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            seconds[key] += dt
        if t5 - last_log > 30:
            last_log = t5
            done = start + b
            log(f"  100k build: {done} pages, {t5 - clock:.0f} s "
                f"(~{(t5 - clock) / done * (n_pages - done):.0f} s to go)")
    out.close()
    vectors = np.memmap(path, dtype=np.float16, mode="r", shape=(n_pages * n, d))
    offsets = np.arange(n_pages + 1, dtype=np.int64) * n
    cent_offsets = np.arange(n_pages + 1, dtype=np.int64) * centroids
    index = CodeIndex(BinaryCodes(bits, d), offsets, cents, cent_offsets)
    return StreamedIndex(index, ArrayVectors(vectors, offsets), exact, path.stat().st_size,
                         seconds)

"""The collection rows of benchmarks/search.py: our LanceDB indexer, end to end.

Search through ``LanceDBIndexer.search`` (the product's path: codes and centroids in
memory, full vectors taken from the table), the first search after a 10-page commit (the
cache follows the commit instead of reloading), and 8 searching threads against one.
LanceDB's own flat multivector search runs beside it at 1k pages (it is slow).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

import page_cache
from retriever.search.twostage import default_rerank
from search_peers import lancedb_native
from search_rows import EXTRA, K, add_row, log, timed

def lancedb_native_row(n: int, pages: np.ndarray, queries: list, exact: list,
                       root: Path, slow_queries: int) -> None:
    import lancedb
    import pyarrow as pa

    p, nv, d = pages.shape
    # LanceDB's own search on a float32 table (its fastest storage here)
    t0 = time.perf_counter()
    vec_type = pa.list_(pa.list_(pa.float32(), d))
    inner = pa.FixedSizeListArray.from_arrays(pa.array(pages.reshape(-1)), d)
    column = pa.ListArray.from_arrays(pa.array(np.arange(p + 1, dtype=np.int32) * nv), inner)
    table = lancedb.connect(root / "native").create_table(
        "pages", pa.table({"page": pa.array(np.arange(p), pa.int32()),
                           "vectors": column.cast(vec_type)}))
    build = time.perf_counter() - t0
    slow = queries[: slow_queries]
    t, out = timed(lambda q: lancedb_native(table, q, K, n), slow)
    add_row("two-stage", "LanceDB 0.40 native flat multivector", n, t, out, exact,
            disk=dir_kb(root / "native", n), build=build, ram=None)


def collection_rows(n: int, pages: np.ndarray, queries: list, exact: list,
                    workdir: Path, threads: int, slow_queries: int) -> None:
    """Our LanceDB collection with binary codes: the product's search path, end to end."""
    from indexers.lancedb.indexer import LanceDBIndexer
    from retriever.manifest import EncoderIdentity, Manifest
    from retriever.types import MultiVector, PageRecord

    p, nv, d = pages.shape
    root = workdir / f"lancedb-{n}"
    shutil.rmtree(root, ignore_errors=True)
    if n <= 1000:
        lancedb_native_row(n, pages, queries, exact, root, slow_queries)
    enc = EncoderIdentity("bench/synthetic", "synthetic", "0", d, "multi")
    ix = LanceDBIndexer(root / "ours", Manifest(enc, "lancedb"), quantization="binary",
                        threads=threads)
    boxes = np.zeros((nv, 4), np.float32)
    t0 = time.perf_counter()
    for lo in range(0, p, 500):  # written in batches, as indexing commits them
        ix.add([PageRecord(f"p{i:06d}", "/bench", 1, 1000, 1400,
                           MultiVector(pages[i], boxes, check_norm=False))
                for i in range(lo, min(p, lo + 500))])
    write = time.perf_counter() - t0
    t0 = time.perf_counter()
    cache = ix._code_searcher().cache(ix._table)
    if cache.index.coarse_stage() == "ivf":
        cache.index.centroid_ivf()
    load = time.perf_counter() - t0
    log(f"  collection of {n}: written in {write:.0f} s, codes loaded in {load:.1f} s, "
        f"coarse stage {cache.index.coarse_stage()}")
    mvs = [MultiVector(q, np.zeros((len(q), 4), np.float32), check_norm=False) for q in queries]

    def search(q: MultiVector) -> list[int]:
        return [int(h.key[1:7]) for h in ix.search([q], K)[0]]

    t, out = timed(search, mvs)  # right after writing: what the page cache kept of it
    name = (f"ours: LanceDBIndexer binary, rerank {default_rerank('binary')}, "
            f"{cache.index.coarse_stage()}")
    add_row("two-stage", name, n, t, out, exact, ram=cache.nbytes / n / 1024,
            disk=dir_kb(root / "ours", n), build=load,
            note=f"fp16 table + codes; written in {write:.0f} s")
    after_commit(ix, pages, mvs, float(np.median(t)))
    concurrent(ix, mvs, name, n)
    ix.close()
    shutil.rmtree(root, ignore_errors=True)


def after_commit(ix, pages: np.ndarray, mvs: list, p50: float) -> None:
    """A 10-page document lands; the next search follows the commit (not a reload)."""
    from retriever.types import MultiVector, PageRecord

    boxes = np.zeros((pages.shape[1], 4), np.float32)
    waits = []
    for round_ in range(3):
        ix.add([PageRecord(f"new{round_}", "/bench/new", i + 1, 1000, 1400,
                           MultiVector(pages[i], boxes, check_norm=False)) for i in range(10)])
        start = time.perf_counter()
        ix.search([mvs[round_ % len(mvs)]], K)
        waits.append(time.perf_counter() - start)
    extra = (np.median(waits) - p50) * 1e3
    log(f"  first search after a 10-page commit: {np.median(waits) * 1e3:.0f} ms median of 3 "
        f"(steady p50 {p50 * 1e3:.0f} ms): the commit cost it {extra:.0f} ms")
    EXTRA.append(dict(system="first search after a 10-page commit", pages=ix.count(),
                      wait_ms=round(float(np.median(waits)) * 1e3, 1),
                      commit_cost_ms=round(float(extra), 1)))


def concurrent(ix, mvs: list, name: str, n: int, threads: int = 8, rounds: int = 2,
               repeats: int = 3) -> None:
    """Searches per second from 1 and from ``threads`` threads on one open collection,
    beside what the host's cores themselves gain from a second thread (``host_scaling``):
    one search already spreads its kernels over every core, so the ratio is bounded by
    that, and on a shared VM it moves from run to run. One thread and many alternate
    ``repeats`` times and the medians are reported, so a burst from a neighbour does not
    land on one side only."""
    from concurrent.futures import ThreadPoolExecutor

    from host_scaling import host_scaling

    host = host_scaling()
    work = [mvs[i % len(mvs)] for i in range(threads * rounds)]
    serial, parallel = [], []
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            for q in work:
                ix.search([q], K)
            serial.append(len(work) / (time.perf_counter() - start))
            start = time.perf_counter()
            list(pool.map(lambda q: ix.search([q], K), work))
            parallel.append(len(work) / (time.perf_counter() - start))
    ratio = float(np.median(np.array(parallel) / np.array(serial)))
    one, many = float(np.median(serial)), float(np.median(parallel))
    log(f"  {threads} searching threads: {many:.2f} searches/s against {one:.2f} from one "
        f"({ratio:.2f}x, median of {repeats} alternations); the host's {host['workers']} "
        f"cores, one thread each, against one: {host['matmul']:.2f}x the matmul work, "
        f"{host['memory']:.2f}x the memory copies")
    EXTRA.append(dict(system=f"{name}: {threads} threads vs 1", pages=n,
                      searches_per_s_1=round(one, 2), searches_per_s_many=round(many, 2),
                      ratio=round(ratio, 2), repeats=repeats,
                      host_cores=host["workers"], host_matmul_scaling=host["matmul"],
                      host_memory_scaling=host["memory"]))


def dir_kb(path: Path, n: int) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / n / 1024


def _open_streamed(backend: str, path: Path, manifest, quantization: str, threads: int):
    if backend == "faiss":
        from indexers.faiss import create_faiss_indexer

        return create_faiss_indexer(path, manifest, quantization=quantization,
                                    threads=threads)
    from indexers.lancedb.indexer import LanceDBIndexer

    return LanceDBIndexer(path, manifest, quantization=quantization, threads=threads)


def _load_codes(ix, backend: str):
    """The collection's code index, loaded and its IVF built -> (index, RAM bytes)."""
    if backend == "faiss":
        from indexers.faiss.codes import _code_index

        holder = index = _code_index(ix._fresh(), ix.quantization, ix.path)
    else:
        holder = ix._code_searcher().cache(ix._table)
        index = holder.index
    if index.coarse_stage() == "ivf":
        index.centroid_ivf()
    return index, holder.nbytes


def streamed_collection_row(n: int, workdir: Path, threads: int, n_queries: int, *,
                            backend: str = "lancedb", quantization: str = "binary") -> None:
    """A collection too big for the in-memory sizes (100k pages: 53 GB of float32),
    written chunk by chunk through the indexer's ``add`` as indexing would, with the
    exact reference computed per chunk; then searched through the indexer."""
    from retriever.manifest import EncoderIdentity, Manifest
    from retriever.search.scoring_torch import maxsim_many_torch
    from retriever.search.twostage import best_pages
    from retriever.types import MultiVector, PageRecord
    from synthetic import Corpus

    corpus = Corpus(n)
    queries, _ = corpus.queries(n_queries)
    root = workdir / f"{backend}-streamed-{n}"
    shutil.rmtree(root, ignore_errors=True)
    enc = EncoderIdentity("bench/synthetic", "synthetic", "0", corpus.dim, "multi")
    ix = _open_streamed(backend, root / "ours", Manifest(enc, backend), quantization, threads)
    boxes = np.zeros((corpus.n_vectors, 4), np.float32)
    exact_scores = np.empty((len(queries), n), np.float32)  # (n_queries, P)
    clock = last = time.perf_counter()
    for c in range(corpus.n_chunks):
        pages = corpus.chunk(c)[0]  # (B, n, d)
        start, b = c * corpus.chunk_pages, pages.shape[0]
        local = np.arange(b + 1, dtype=np.int64) * corpus.n_vectors
        exact_scores[:, start:start + b] = maxsim_many_torch(
            queries, pages.reshape(-1, corpus.dim), local)
        for lo in range(0, b, 500):  # committed in batches, as indexing does
            ix.add([PageRecord(f"p{start + i:06d}", "/bench", 1, 1000, 1400,
                               MultiVector(pages[i], boxes, check_norm=False))
                    for i in range(lo, min(b, lo + 500))])
        if time.perf_counter() - last > 60:
            last = time.perf_counter()
            done = start + b
            log(f"  streamed collection: {done} pages in {last - clock:.0f} s "
                f"(~{(last - clock) / done * (n - done):.0f} s to go)")
    write = time.perf_counter() - clock
    exact = [best_pages(row, K) for row in exact_scores]
    t0 = time.perf_counter()
    index, ram = _load_codes(ix, backend)
    load = time.perf_counter() - t0
    log(f"  streamed collection of {n}: written (with the exact reference) in {write:.0f} s, "
        f"codes loaded in {load:.1f} s, coarse stage {index.coarse_stage()}")
    mvs = [MultiVector(q, np.zeros((len(q), 4), np.float32), check_norm=False) for q in queries]

    def search(q: MultiVector) -> list[int]:
        return [int(h.key[1:7]) for h in ix.search([q], K)[0]]

    t, out = timed(search, mvs)  # right after writing: what the page cache kept of it
    name = (f"ours: {type(ix).__name__} {quantization}, rerank "
            f"{default_rerank(quantization)}, {index.coarse_stage()}, streamed")
    add_row("two-stage", name, n, t, out, exact, ram=ram / n / 1024,
            disk=dir_kb(root / "ours", n), build=load,
            note=f"fp16 vectors + codes; written in {write:.0f} s")
    t, out = timed(search, mvs)  # the same queries again: their pages are cached now
    add_row("two-stage", name + ", warm (2nd pass)", n, t, out, exact, ram=ram / n / 1024)
    cold = page_cache.timed_cold(search, mvs, root)
    if cold is None:
        log("  cold pass: not measured (dropping the page cache needs Linux and root)")
    else:
        add_row("two-stage", name + ", cold (page cache dropped per query)", n,
                np.array(cold[0]), cold[1], exact, ram=ram / n / 1024)
        timed(search, mvs)  # warm again, so the commit below is timed as before
    after_commit_pages = corpus.chunk(0)[0][:10]
    after_commit(ix, after_commit_pages, mvs, float(np.median(t)))
    ix.close()
    shutil.rmtree(root, ignore_errors=True)

"""Exact and two-stage MaxSim on a GPU (retriever.search.device_pages), against the memory
bandwidth bound measured in the same run, and a FAISS collection searched there.

    python benchmarks/search_gpu.py                       # CUDA: 10k and 100k pages
    python benchmarks/search_gpu.py --sizes 10000 --batches 1,16 --json
    python benchmarks/search_gpu.py --smoke               # CPU, tiny: checks the script

Pages are benchmarks/synthetic.py's structured ColPali-shaped pages (1030 x 128),
generated chunk by chunk in worker processes. Each worker also computes its pages'
centroids (retriever.search.prefilter) and the float32 MaxSim of every query against them,
so recall@10 is against exact float32 search over the original vectors, not against the
half-precision copy on the device.

Rows, per size, dtype and query batch (``through: kernel``, DevicePages as the FAISS
backend's ``device`` option uses it):

- ``exact``: every page's vectors read once per batch;
- ``two-stage R``: every page's 16 centroids, then exact MaxSim of the best R
  (``--rerank``) pages per query (their union, for a batch).

The bound is the time to read what the search must read once, at the read bandwidth
measured by a reduction over a 4 GiB tensor in this run; ``of bound`` = bound / measured
time. ``pages/s`` counts pages scored exactly (for a batch: pages x queries / time).

With ``--collection N`` (default 10k on CUDA), a FAISS collection of N pages is built
through the indexer, then searched with ``device=cuda`` (``through: collection``): the
first search (the upload, reported as load_s), the steady p50, and the first search after
a 10-page commit (the carried pages: only the new ones are uploaded).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

import numpy as np  # noqa: E402

K = 10


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--dtypes", default="float16,bfloat16")
    ap.add_argument("--batches", default="1,16", help="queries per search call")
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--rerank", default="256,1024", help="two-stage: pages per query (a list)")
    ap.add_argument("--repeats", type=int, default=20, help="timed calls per row")
    ap.add_argument("--workers", type=int, default=None, help="page generators (default: cores)")
    ap.add_argument("--collection", type=int, default=None,
                    help="pages of the FAISS collection searched on the device (0: none)")
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: checks the script")
    ap.add_argument("--json", action="store_true", help="one JSON object per row at the end")
    return ap.parse_args()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- page generation (worker processes) ------------------------------------------------

_CORPUS = None
_QUERIES = None


def _init(n_pages: int, n_vectors: int, dim: int, queries: np.ndarray) -> None:
    global _CORPUS, _QUERIES
    from synthetic import Corpus

    _CORPUS, _QUERIES = Corpus(n_pages, n_vectors, dim), queries


def _chunk(index: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One chunk -> (index, float16 pages (B, n, d), centroids, centroid offsets,
    float32 MaxSim of every query against these pages (Q, B))."""
    from retriever.search.prefilter import page_centroids

    pages, _ = _CORPUS.chunk(index)  # (B, n, d) float32
    b, n, d = pages.shape
    flat = pages.reshape(-1, d)
    offsets = np.arange(b + 1, dtype=np.int64) * n
    cents, cent_offsets = page_centroids(flat, offsets)
    q, q_len = _QUERIES.reshape(-1, d), _QUERIES.shape[1]
    sims = (flat @ q.T).reshape(b, n, -1).max(axis=1)  # (B, Q * q_len)
    truth = sims.reshape(b, -1, q_len).sum(axis=2).T  # (Q, B)
    return index, pages.astype(np.float16), cents, cent_offsets, truth.astype(np.float32)


def generate(n_pages: int, n_vectors: int, dim: int, n_queries: int, workers: int):
    """Pages, centroids, queries and the exact float32 top-10 per query."""
    from synthetic import Corpus

    corpus = Corpus(n_pages, n_vectors, dim)
    queries, _ = corpus.queries(n_queries, min(32, corpus.n_content))
    queries = np.stack(queries)  # (Q, 32, d)
    parts = [None] * corpus.n_chunks
    with mp.get_context("fork").Pool(workers, _init,
                                     (n_pages, n_vectors, dim, queries)) as pool:
        for index, *part in pool.imap_unordered(_chunk, range(corpus.n_chunks)):
            parts[index] = part
    pages = np.concatenate([p[0] for p in parts])  # (P, n, d) float16
    cents = np.concatenate([p[1] for p in parts])
    counts = np.concatenate([np.diff(p[2]) for p in parts])
    cent_offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    scores = np.concatenate([p[3] for p in parts], axis=1)  # (Q, P)
    truth = np.argsort(-scores, axis=1)[:, :K]
    return pages, (cents, cent_offsets), queries, truth


# -- measurement -----------------------------------------------------------------------

def _sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def read_bandwidth(torch, device) -> float:
    """Bytes/s a reduction reads from device memory (the bound of a scan)."""
    n = (1 << 31) if device.type == "cuda" else (1 << 24)  # 4 GiB / 32 MiB of float16
    x = torch.ones(n, dtype=torch.float16, device=device)
    for _ in range(3):
        x.sum()
    _sync(torch, device)
    times = []
    for _ in range(10):
        start = time.perf_counter()
        x.sum()
        _sync(torch, device)
        times.append(time.perf_counter() - start)
    del x
    return 2 * n / min(times)


def _timed(torch, device, fn, repeats: int) -> list[float]:
    fn()  # warm-up: kernels, allocator
    _sync(torch, device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(torch, device)
        times.append(time.perf_counter() - start)
    return times


def _recall(found, truth) -> float:
    return float(np.mean([len(set(p[:K].tolist()) & set(t.tolist())) / K
                          for (p, _), t in zip(found, truth)]))


def bench_kernel(args, torch, device, n_pages: int, rows: list[dict], bandwidth: float) -> None:
    from retriever.search.device_pages import DevicePages, DeviceStore

    n_vectors, dim = (1030, 128) if not args.smoke else (100, 32)
    t0 = time.perf_counter()
    pages, cents, queries, truth = generate(n_pages, n_vectors, dim, args.queries, args.workers)
    _log(f"{n_pages} pages generated in {time.perf_counter() - t0:.0f} s")
    flat = pages.reshape(-1, dim)
    offsets = np.arange(n_pages + 1, dtype=np.int64) * n_vectors
    for dtype in args.dtypes.split(","):
        if device.type == "cpu" and dtype != "float32":
            dtype = "float32"  # the CPU's half-precision matmuls say nothing
        t0 = time.perf_counter()
        store = DeviceStore(dim, str(device), dtype, centroids=16)
        view = DevicePages(store, store.append(flat, offsets, centroids=cents))
        _sync(torch, device)
        upload_s = time.perf_counter() - t0
        elem = torch.empty(0, dtype=getattr(torch, dtype)).element_size()
        page_bytes = n_vectors * dim * elem
        for batch in [int(b) for b in args.batches.split(",")]:
            calls = [list(queries[i:i + batch]) for i in range(0, len(queries) - batch + 1,
                                                                 batch)]
            methods = [("exact", None)] + [(f"two-stage {r}", int(r))
                                           for r in args.rerank.split(",")]
            for method, rerank in methods:
                found = [r for c in calls for r in view.search(c, K, rerank=rerank)]
                call = iter(calls * (args.repeats // len(calls) + 2))
                times = _timed(torch, device,
                               lambda: view.search(next(call), K, rerank=rerank), args.repeats)
                p50 = statistics.median(times)
                scored = n_pages if rerank is None else min(rerank * batch, n_pages)
                read = scored * page_bytes + (0 if rerank is None
                                              else n_pages * 16 * dim * elem)
                bound = read / bandwidth
                rows.append(dict(
                    system=f"ours DevicePages {method} {dtype}", through="kernel",
                    device=torch.cuda.get_device_name(device) if device.type == "cuda"
                    else "cpu", dtype=dtype, pages=n_pages, batch=batch, threads=None,
                    p50_ms=p50 * 1e3, p95_ms=float(np.percentile(times, 95)) * 1e3,
                    per_query_ms=p50 * 1e3 / batch, pages_s=scored * batch / p50
                    if rerank is None else rerank * batch / p50,
                    bound_ms=bound * 1e3, of_bound=bound / p50,
                    recall_at_10=_recall(found, truth[:len(found)]),
                    gpu_kb_per_page=store.nbytes / n_pages / 1024,
                    ram_kb_per_page=0.0, disk_kb_per_page=None, build_s=upload_s))
                r = rows[-1]
                _log(f"  {n_pages} {dtype} batch {batch} {method}: p50 {r['p50_ms']:.2f} ms "
                     f"({r['of_bound']:.0%} of bound), recall {r['recall_at_10']:.3f}")
        del view, store
        if device.type == "cuda":
            torch.cuda.empty_cache()


def bench_collection(args, torch, device, n_pages: int, rows: list[dict]) -> None:
    """A FAISS collection built through the indexer, searched with ``device``."""
    from faiss_search import _records
    from synthetic import Corpus

    from indexers.faiss import create_faiss_indexer
    from retriever.manifest import EncoderIdentity, Manifest
    from retriever.types import MultiVector

    n_vectors, dim = (1030, 128) if not args.smoke else (100, 32)
    corpus = Corpus(n_pages, n_vectors, dim)
    queries, targets = corpus.queries(args.queries, min(32, corpus.n_content))
    mvs = [MultiVector(q, np.zeros((len(q), 4), np.float32)) for q in queries]
    encoder = EncoderIdentity("bench/synthetic", "synthetic", "1", dim, "multi")
    with tempfile.TemporaryDirectory(prefix="gpu-collection-") as root:
        ix = create_faiss_indexer(Path(root) / "c", Manifest(encoder, "faiss"),
                                  index_type="flat", device=str(device))
        t0 = time.perf_counter()
        for first, chunk in corpus.chunks():
            ix.add(_records(chunk, first))
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ix.search(mvs[:1], K)  # the first search uploads the view's pages
        load_s = time.perf_counter() - t0
        times, top1 = [], []
        for mv, target in zip(mvs, targets):
            t0 = time.perf_counter()
            hits = ix.search([mv], K)[0]
            times.append(time.perf_counter() - t0)
            top1.append(int(hits[0].key[1:].split(":")[0]) == int(target))
        waits = []
        for i in range(3):  # a 10-page commit, then the first search
            ix.add(_records(next(corpus.chunks())[1][:10], 10_000_000 + 10 * i))
            t0 = time.perf_counter()
            ix.search(mvs[:1], K)
            waits.append(time.perf_counter() - t0)
        rows.append(dict(system=f"ours FaissIndexer device={device}", through="collection",
                         device=str(device), dtype="float16" if device.type == "cuda"
                         else "float32", pages=n_pages, batch=1, threads=None,
                         p50_ms=statistics.median(times) * 1e3,
                         p95_ms=float(np.percentile(times, 95)) * 1e3,
                         top1=float(np.mean(top1)), recall_at_10=None,
                         after_commit_ms=statistics.median(waits) * 1e3, load_s=load_s,
                         ram_kb_per_page=None, disk_kb_per_page=None, build_s=build_s))
        r = rows[-1]
        _log(f"  collection {n_pages}: p50 {r['p50_ms']:.2f} ms, top-1 {r['top1']:.2f}, "
             f"after a commit {r['after_commit_ms']:.1f} ms, upload {load_s:.1f} s")
        ix.close()


def main() -> int:
    args = _parse()
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("search_gpu: no CUDA device here; use --smoke to check the script on the CPU")
        return 0
    device = torch.device("cpu" if args.smoke else "cuda")
    if args.smoke:
        args.sizes, args.repeats = "300", 3
    args.workers = args.workers or max(1, mp.cpu_count() - 1)
    collection = args.collection if args.collection is not None else (
        200 if args.smoke else 10_000)
    bandwidth = read_bandwidth(torch, device)
    _log(f"read bandwidth {bandwidth / 1e12:.2f} TB/s ({device})")
    rows: list[dict] = []
    for n in [int(s) for s in args.sizes.split(",")]:
        bench_kernel(args, torch, device, n, rows, bandwidth)
    if collection:
        try:
            bench_collection(args, torch, device, collection, rows)
        except ImportError as exc:  # faiss not installed where the GPU is
            _log(f"collection rows skipped: {exc}")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke)"
    print(f"\n{name}; read bandwidth {bandwidth / 1e12:.2f} TB/s (measured); torch "
          f"{torch.__version__}; k={K}, {args.queries} queries x 32 vectors")
    head = (f"{'system':<44}{'pages':>8}{'batch':>6}{'p50 ms':>9}{'ms/query':>9}"
            f"{'bound ms':>9}{'of bound':>9}{'recall@10':>10}")
    print(head + "\n" + "-" * len(head))
    for r in rows:
        if r["through"] != "kernel":
            continue
        print(f"{r['system']:<44}{r['pages']:>8}{r['batch']:>6}{r['p50_ms']:>9.2f}"
              f"{r['per_query_ms']:>9.3f}{r['bound_ms']:>9.2f}{r['of_bound']:>9.0%}"
              f"{r['recall_at_10']:>10.3f}")
    for r in rows:
        if r["through"] == "collection":
            print(f"{r['system']}: {r['pages']} pages, p50 {r['p50_ms']:.2f} ms, p95 "
                  f"{r['p95_ms']:.2f} ms, top-1 {r['top1']:.2f}, first search after a "
                  f"10-page commit {r['after_commit_ms']:.1f} ms, upload {r['load_s']:.1f} s, "
                  f"build {r['build_s']:.0f} s")
    if args.json:
        for r in rows:
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())

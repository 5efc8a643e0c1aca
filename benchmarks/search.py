"""Multi-vector (MaxSim) search on CPU: our kernels and two-stage search against peers.

    python benchmarks/search.py              # the full run: 1k, 10k and 100k pages
    python benchmarks/search.py --sizes 1000 --big 0 --queries 6   # a quick look
    python benchmarks/search.py --sizes 1000,10000 --big 0 --json  # + one JSON line per row
    python benchmarks/search.py --sizes "" --big 0 --big-collection 100000 --queries 8 --json
    python benchmarks/search.py --sizes "" --big 0 --big-collection 100000 --big-backend faiss

Same process, same data, same threads (``--threads``, default 2, pins torch, OpenMP, MKL,
OpenBLAS and LanceDB) for every system. Data: structured ColPali-shaped pages
(``synthetic.py``: 1030 vectors x 128 per page; background, topic clusters, near-copies)
and 32-vector queries built from known target pages. Quality is recall@10 against exact
float32 MaxSim on the same data. Sections:

1. exact kernels, one query at a time (Nq=32): ours (torch; float32 and float16 storage;
   8 queries batched), our numpy fallback, a plain numpy blocked loop, colpali-engine's
   ``score_multi_vector`` given one pre-padded tensor (its fast path); pages/s and the
   fraction of the compute ceiling, measured in the same run by a float32 matmul probe;
2. two-stage search (binary, int8 codes; full vectors read from a float16 memmap) against
   exact search, LanceDB's own flat multivector search (1k only: it is slow), our LanceDB
   collection with binary codes (through ``LanceDBIndexer.search``, the product path, at
   every size), and fast-plaid (only if it can be installed next to this torch); p50/p95
   ms per query, recall@10, bytes per page in RAM and on disk, build (cache and index
   load reported as build);
3. 100k pages, binary codes only, streamed (``search_stream.py``).

Every row says what it went through: ``kernel`` (a bare kernel of ours), ``collection``
(our indexer), ``peer`` (another project). The code kernels' matmul path (int8 or float32,
picked by a probe on this host) and the coarse stage (IVF or scan) are printed with the
rows they apply to. ``--json`` prints one JSON object per row as the last lines.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000", help="in-memory collection sizes")
    ap.add_argument("--big", type=int, default=100_000, help="streamed size (0: skip)")
    ap.add_argument("--queries", type=int, default=12, help="queries per size")
    ap.add_argument("--slow-queries", type=int, default=3,
                    help="timed queries for the slow peers at 10k and LanceDB native")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--centroids", type=int, default=16, help="per page, coarse stage")
    ap.add_argument("--big-collection", type=int, default=0,
                    help="pages of a LanceDB collection written chunk by chunk and searched "
                    "through the indexer (0: skip; 100000 needs about 30 GB of disk)")
    ap.add_argument("--big-backend", default="lancedb", choices=["lancedb", "faiss"],
                    help="the indexer of --big-collection")
    ap.add_argument("--big-quantization", default="binary", choices=["binary", "int8"],
                    help="the codes of --big-collection")
    ap.add_argument("--workdir", default="/tmp/retriever-search-bench")
    ap.add_argument("--json", action="store_true", help="one JSON object per row at the end")
    ap.add_argument("--sections", default="exact,two-stage,collection",
                    help="which of exact, two-stage, collection to run per size")
    ap.add_argument("--omp-wait", default="PASSIVE", choices=["PASSIVE", "ACTIVE"],
                    help="OpenMP idle threads: PASSIVE sleeps (on a busy, shared machine "
                    "spinning threads slowed torch 7x here); ACTIVE spins")
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:  # thread pools size themselves at import: pin them first
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "LANCE_CPU_THREADS"):
        os.environ[var] = str(ARGS.threads)
    os.environ["OMP_WAIT_POLICY"] = ARGS.omp_wait
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import resource  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from retriever.search.scoring import maxsim_scores_many  # noqa: E402
from retriever.search.scoring_torch import maxsim_many_torch  # noqa: E402
from retriever.search.twostage import (  # noqa: E402
    FULL_SCAN_PAGES, ArrayVectors, CodeIndex, default_candidates, default_rerank, best_pages,
    two_stage_search)
from retriever.search.quantization_torch import binary_kernel, code_matmul_path  # noqa: E402,E501
from search_collection import collection_rows, streamed_collection_row  # noqa: E402
from search_peers import (  # noqa: E402
    colpali_engine_scores, fast_plaid_status, numpy_blocked_scores)
from search_rows import (  # noqa: E402
    CEILING, EXTRA, K, ROWS, THREADS, add_row, log, print_json, print_table, round_robin,
    timed)
from synthetic import Corpus  # noqa: E402

def measure_ceiling(threads: int, dim: int = 128, n_vectors: int = 1030, nq: int = 32
                    ) -> float:
    """Pages/s that a float32 matmul of one query against 16-page blocks reaches here:
    the compute ceiling of exact MaxSim (the maximum and sum are extra work on top)."""
    import torch

    block = torch.randn(16 * n_vectors, dim)
    q_t = torch.randn(dim, nq)
    with torch.inference_mode():
        for _ in range(3):
            block @ q_t
        times = []
        for _ in range(20):
            start = time.perf_counter()
            block @ q_t
            times.append(time.perf_counter() - start)
    return 16 / min(times)


def exact_kernels(n: int, pages: np.ndarray, queries: list, exact: list) -> None:
    import torch

    flat = pages.reshape(-1, pages.shape[2])  # (P*n, d) a view
    flat16 = flat.astype(np.float16)
    offsets = np.arange(n + 1, dtype=np.int64) * pages.shape[1]
    every, slow = len(queries), ARGS.slow_queries if n > 2000 else len(queries)
    page_kb = pages[0].nbytes / 1024
    padded = torch.from_numpy(pages)  # (P, n, d): every page has one length, no padding
    rank = lambda scores: best_pages(scores, K)  # noqa: E731
    th = ARGS.threads
    systems = {
        "ours: torch kernel, fp32": (
            lambda q: rank(maxsim_many_torch([q], flat, offsets, threads=th)[0]), every,
            page_kb),
        "ours: torch kernel, fp16 storage": (
            lambda q: rank(maxsim_many_torch([q], flat16, offsets, threads=th)[0]), every,
            page_kb / 2),
        "ours: numpy fallback (retriever.search.scoring)": (
            lambda q: rank(maxsim_scores_many([q], flat, offsets, threads=th)[0]), slow,
            page_kb),
        "plain numpy blocked matmul+max": (
            lambda q: rank(numpy_blocked_scores(q, pages)), slow, page_kb),
        "colpali-engine score_multi_vector, padded tensor": (
            lambda q: rank(colpali_engine_scores(q, padded)), slow, page_kb),
    }
    runs = round_robin({k: v[:2] for k, v in systems.items()}, queries)
    for name, (t, out) in runs.items():
        add_row("exact", name, n, t, out, exact, ram=systems[name][2])
    flat16 = None  # 2.6 GB at 10k pages: give it back before the next measurement
    batches = [queries[i : i + 8] for i in range(0, len(queries) - 7, 8)] or [queries]
    t, out = timed(lambda qs: [rank(s) for s in maxsim_many_torch(qs, flat, offsets,
                                                                  threads=th)], batches)
    add_row("exact", f"ours: torch kernel, {len(batches[0])} queries/call", n, t,
            [r for rs in out for r in rs], exact, per_call=len(batches[0]), ram=page_kb)


def two_stage(n: int, pages: np.ndarray, queries: list, exact: list, workdir: Path) -> None:
    flat = pages.reshape(-1, pages.shape[2])
    offsets = np.arange(n + 1, dtype=np.int64) * pages.shape[1]
    path = workdir / f"vectors-{n}.f16"
    with path.open("wb") as out:  # float16 on disk, as stage 2 reads it
        for lo in range(0, flat.shape[0], 1 << 20):
            out.write(flat[lo : lo + (1 << 20)].astype(np.float16).tobytes())
    fetch = ArrayVectors(np.memmap(path, dtype=np.float16, mode="r", shape=flat.shape), offsets)
    disk_kb = path.stat().st_size / n / 1024
    centroids = ARGS.centroids if n > FULL_SCAN_PAGES else 0  # the stage runs past it
    stage0 = f", {centroids} centroids/page -> {default_candidates(n)}" if centroids else ""
    systems, built = {}, {}
    variants = [("binary", "asymmetric", "auto"), ("binary", "hamming", "auto"),
                ("int8", None, "auto")]
    if centroids:
        variants.insert(1, ("binary", "asymmetric", "scan"))
    for quantization, mode, coarse in variants:
        t0 = time.perf_counter()
        index = CodeIndex.build(flat, offsets, quantization, centroids=centroids,
                                binary_mode=mode or "asymmetric")
        index.coarse = coarse
        if index.coarse_stage() == "ivf":
            index.centroid_ivf()  # built once per collection load: counted as build
        build = time.perf_counter() - t0
        rerank = default_rerank(quantization)
        stage = f", {index.coarse_stage()}" if centroids else ""
        name = (f"ours: {quantization}{' ' + mode if mode else ''}, rerank {rerank}"
                f"{stage0}{stage}")

        def search(q, index=index, rerank=rerank):
            return two_stage_search(index, [q], fetch, rerank=rerank,
                                    threads=ARGS.threads)[0][0]

        systems[name] = (search, len(queries))
        built[name] = (index.nbytes / n / 1024, build)
    for name, (t, out) in round_robin(systems, queries).items():
        add_row("two-stage", name, n, t, out, exact, ram=built[name][0], disk=disk_kb,
                build=built[name][1])
    path.unlink()


def big(n: int, workdir: Path) -> None:
    from search_stream import build_streamed

    corpus = Corpus(n)
    queries, _ = corpus.queries(ARGS.queries)
    log(f"{n} pages, streamed: exact reference, binary codes, centroids, float16 memmap")
    built = build_streamed(corpus, queries, workdir, ARGS.centroids, log)
    exact = [best_pages(row, K) for row in built.exact]
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in built.seconds.items())
    log(f"  build steps: {steps}")
    build = built.seconds["codes"] + built.seconds["centroids"]
    rerank = default_rerank("binary")
    ram, disk = built.index.nbytes / n / 1024, built.disk_bytes / n / 1024
    t, out = timed(lambda q: two_stage_search(built.index, [q], built.vectors,
                                              rerank=rerank, threads=ARGS.threads)[0][0],
                   queries)
    add_row("streamed", f"ours: binary, rerank {rerank}, {ARGS.centroids} centroids/page -> "
            f"{default_candidates(n)}, {built.index.coarse_stage()}", n, t, out, exact,
            ram=ram, disk=disk, build=build)
    # the physics that the centroid stage avoids: a full scan of every page's codes
    codes, offsets = built.index.codes, built.index.offsets
    t, out = timed(lambda q: best_pages(codes.score_many([q], offsets)[0], K),
                   queries[:2])
    add_row("streamed", "binary codes, full scan (no centroid stage, no rerank)", n, t, out,
            exact, ram=codes.nbytes / n / 1024)
    (workdir / f"vectors-{n}.f16").unlink()


def main() -> None:
    import torch

    torch.set_num_threads(ARGS.threads)
    THREADS[0] = ARGS.threads
    CEILING["pages_per_s"] = measure_ceiling(ARGS.threads)
    CEILING["code_matmul"] = code_matmul_path()
    CEILING["binary_kernel"] = binary_kernel()
    log(f"compute ceiling (float32 matmul probe, {ARGS.threads} threads): "
        f"{CEILING['pages_per_s']:.0f} pages/s; code matmul path: {CEILING['code_matmul']}; "
        f"binary code kernel: {CEILING['binary_kernel']}")
    workdir = Path(ARGS.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    sizes = [int(s) for s in ARGS.sizes.split(",") if s]
    if sizes:
        t0 = time.perf_counter()
        top = Corpus(max(sizes))
        all_pages = np.concatenate([top.chunk(c)[0] for c in range(top.n_chunks)])
        log(f"generated {max(sizes)} pages x 1030 x 128 in {time.perf_counter() - t0:.0f} s; "
            f"threads {ARGS.threads}")
    for n in sizes:
        pages = all_pages[:n]  # the first n pages are exactly Corpus(n)
        queries, targets = Corpus(n).queries(ARGS.queries)
        flat, offsets = pages.reshape(-1, 128), np.arange(n + 1, dtype=np.int64) * 1030
        exact = [best_pages(row, K) for row in maxsim_many_torch(queries, flat, offsets)]
        log(f"{n} pages: exact top-1 is the target for "
            f"{np.mean([e[0] == t for e, t in zip(exact, targets)]):.0%} of queries")
        sections = ARGS.sections.split(",")
        if "exact" in sections:
            exact_kernels(n, pages, queries, exact)
        if "two-stage" in sections:
            two_stage(n, pages, queries, exact, workdir)
        if "collection" in sections:
            collection_rows(n, pages, queries, exact, workdir, ARGS.threads,
                            ARGS.slow_queries)
    if sizes:
        del all_pages, pages
    if ARGS.big:
        big(ARGS.big, workdir)
    if ARGS.big_collection:
        streamed_collection_row(ARGS.big_collection, workdir, ARGS.threads, ARGS.queries,
                                backend=ARGS.big_backend, quantization=ARGS.big_quantization)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"\nthreads {ARGS.threads} (OMP_WAIT_POLICY={ARGS.omp_wait}); Nq=32; k={K}; recall@{K} against exact fp32 MaxSim; "
          f"fast-plaid: {fast_plaid_status()}; peak RSS {peak_gb:.1f} GB; "
          f"total {time.perf_counter() - clock:.0f} s")
    print(f"compute ceiling {CEILING['pages_per_s']:.0f} pages/s (float32 matmul probe); "
          f"code matmul path {CEILING['code_matmul']}; binary code kernel "
          f"{CEILING['binary_kernel']}")
    print_table()
    for extra in EXTRA:
        print(extra)
    if ARGS.json:
        print_json()


if __name__ == "__main__":
    main()

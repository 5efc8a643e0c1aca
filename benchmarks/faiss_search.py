"""The FAISS backend's search modes side by side, on structured ColPali-shaped pages.

    python benchmarks/faiss_search.py --pages 500 --methods exact,ivf,int8,binary

Pages come from ``benchmarks/synthetic.py`` (background patches, per-page content around
shared topics, near-copies); each query is 32 noisy content vectors of a known target page.
Every method indexes the same pages into its own FAISS collection (one commit per chunk of
128 pages) and answers the same queries in this process with the same thread count:

- ``exact``: ``index_type=flat``, exact MaxSim over every page (the reference)
- ``ivf`` / ``ivfpq`` / ``hnsw``: a FAISS token index proposes ``--candidates`` pages,
  exact MaxSim ranks them
- ``int8`` / ``binary``: code MaxSim (retriever.search.twostage) shortlists, exact MaxSim ranks

Quality is recall@10 and top-1 agreement against exact float32 MaxSim on the original
vectors; speed is the median ms per query and the ratio to ``exact``, and the first
search after a 10-page commit (median of 3: what following a commit costs), and the first
search of the collection opened again (what a new process waits for: its codes are read
from the segments' code files, or encoded from every stored vector). ``--cold`` adds the
median with the OS page cache dropped before each query (Linux, root; the stored vectors
of the shortlist then come from disk); ``--concurrent 8`` adds searches/s from 8 threads
against one on the open collection.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--vectors", type=int, default=1030, help="vectors per page")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=256, help="pages reranked (ivf, hnsw)")
    ap.add_argument("--methods", default="exact,ivf,int8,binary",
                    help="comma list of exact, ivf, ivfpq, hnsw, int8, binary")
    ap.add_argument("--dir", default=None, help="where collections go (default: tmp)")
    ap.add_argument("--concurrent", type=int, default=0, metavar="THREADS",
                    help="also searches/s from this many threads against one, on one open "
                         "collection (0: skip)")
    ap.add_argument("--cold", action="store_true",
                    help="also time each query with the OS page cache dropped first "
                         "(Linux, as root): the collection's files read from disk")
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)  # pools size themselves at import
    sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).parent)]

import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from retriever.manifest import EncoderIdentity, Manifest  # noqa: E402
import page_cache  # noqa: E402
from search_collection import after_commit, concurrent  # noqa: E402 - the LanceDB rows' measures
from search_rows import EXTRA  # noqa: E402
from retriever.search.scoring import maxsim_scores, top_k  # noqa: E402
from retriever.types import MultiVector, PageRecord  # noqa: E402

K = 10
METHODS = {
    "exact": {"index_type": "flat"},
    "ivf": {"index_type": "ivf"},
    "ivfpq": {"index_type": "ivfpq"},
    "hnsw": {"index_type": "hnsw"},
    "int8": {"quantization": "int8"},
    "binary": {"quantization": "binary"},
}


def _records(chunk: np.ndarray, first: int) -> list[PageRecord]:
    boxes = np.zeros((chunk.shape[1], 4), np.float32)
    return [PageRecord(doc_id=f"p{first + i:06d}", source=f"/bench/{first + i}.pdf",
                       page_number=1, width=1000, height=1400,
                       embedding=MultiVector(page, boxes, check_norm=False))
            for i, page in enumerate(chunk)]


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(args: argparse.Namespace) -> None:
    from synthetic import Corpus

    from indexers.faiss import create_faiss_indexer

    corpus = Corpus(args.pages, args.vectors, args.dim)
    queries, targets = corpus.queries(args.queries)
    vectors = np.concatenate([c.reshape(-1, args.dim) for _, c in corpus.chunks()])  # (N, d)
    offsets = np.arange(args.pages + 1, dtype=np.int64) * args.vectors  # (P+1,)
    truth = [set(top_k(maxsim_scores(q, vectors, offsets), K)[0].tolist()) for q in queries]
    del vectors
    encoder = EncoderIdentity("bench/synthetic", "synthetic", "1", args.dim, "multi")
    root = Path(args.dir or tempfile.mkdtemp(prefix="faiss-bench-"))
    rows, base = [], None
    for name in args.methods.split(","):
        path = root / name
        shutil.rmtree(path, ignore_errors=True)
        options = {**METHODS[name], "threads": args.threads}
        if name in ("ivf", "ivfpq", "hnsw"):
            options["candidates"] = args.candidates
        ix = create_faiss_indexer(path, Manifest(encoder, "faiss"), **options)
        t0 = time.perf_counter()
        for first, chunk in corpus.chunks():
            ix.add(_records(chunk, first))
        build_s = time.perf_counter() - t0
        ix.search([MultiVector(queries[0], np.zeros((len(queries[0]), 4), np.float32))], K)
        times, recalls, top1 = [], [], []
        for q, want, target in zip(queries, truth, targets):
            mv = MultiVector(q, np.zeros((len(q), 4), np.float32))
            t0 = time.perf_counter()
            hits = ix.search([mv], K)[0]
            times.append(time.perf_counter() - t0)
            got = {int(h.key[1:].split(":")[0]) for h in hits}
            recalls.append(len(got & want) / K)
            top1.append(int(hits[0].key[1:].split(":")[0]) == int(target))
        ms = 1000 * float(np.median(times))
        base = base or ms
        disk_kib = _dir_bytes(path) / args.pages / 1024
        # the first search after a 10-page commit: the codes follow it, or are rebuilt
        mvs = [MultiVector(q, np.zeros((len(q), 4), np.float32)) for q in queries]
        after_commit(ix, next(corpus.chunks())[1][:10], mvs, ms / 1000)
        wait_ms = EXTRA[-1]["wait_ms"]
        if args.concurrent:
            concurrent(ix, mvs, name, args.pages, threads=args.concurrent, rounds=3)
        # last: it empties the caches the searches above used
        cold = page_cache.timed_cold(lambda mv: ix.search([mv], K), mvs, path) if args.cold \
            else None
        cold_ms = None if cold is None else 1000 * float(np.median(cold[0]))
        ix.close()
        # what a new process pays before its first answer: opening, and the codes (read
        # from the segments' code files, or encoded from every stored vector)
        t0 = time.perf_counter()
        ix = create_faiss_indexer(path, threads=args.threads)
        ix.search([mvs[0]], K)
        reopen_s = time.perf_counter() - t0
        rows.append((name, ms, ms / base, float(np.mean(recalls)), float(np.mean(top1)),
                     build_s, disk_kib, wait_ms, cold_ms, reopen_s))
        ix.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{args.pages} pages x {args.vectors} x {args.dim}, {args.queries} queries x "
          f"{len(queries[0])} vectors, {args.threads} threads; peak RSS {peak:.0f} MiB")
    print(f"{'method':8} {'ms/query':>9} {'vs exact':>9} {'recall@10':>10} {'top1':>6} "
          f"{'index s':>8} {'KiB/page':>9} {'after commit ms':>16} {'cold ms':>8} "
          f"{'reopened, 1st search s':>23}")
    for name, ms, ratio, rec, t1, build, kib, after, cold, reopen in rows:
        cold_text = "-" if cold is None else f"{cold:.1f}"
        print(f"{name:8} {ms:9.1f} {ratio:9.2f} {rec:10.3f} {t1:6.2f} {build:8.1f} {kib:9.0f} "
              f"{after:16.1f} {cold_text:>8} {reopen:23.2f}")
    if args.cold and not page_cache.can_drop():
        print("cold: not measured (dropping the page cache needs Linux and root)")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(ARGS)

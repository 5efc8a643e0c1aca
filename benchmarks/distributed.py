"""Distributed indexing on Ray Data against the local pipeline, sharded search, and a model.

    python benchmarks/distributed.py                  # ~70 pages; a few minutes on 2 cores
    python benchmarks/distributed.py --json           # one JSON object per row, last on stdout
    python benchmarks/distributed.py --pages 30 --encoders 1 --threads 2 --keep /tmp/dist

Setup: ``bash .ci/setup dev`` (text/minilm, LanceDB, tesseract, ``ray[data]``) and the
Debian manuals of ``ingest_corpus.py`` (``apt-get install bash-doc glpk-doc debmake-doc``).

Measured rows (``"through": "collection"``, the product's code): the same files indexed by
``Retriever.index`` (local) and ``Retriever.index(ray=...)`` into fresh LanceDB collections,
``ray.init`` timed apart; page production (``pagework``, as a Ray task runs it) and
``encode_pages`` per page; bytes per page on disk and in the float32 search cache; p50 of
``mode="vector"`` searches, unsharded and through ``ShardedRetriever`` (2 shards). The
``"through": "kernel"`` row times ``exact_maxsim_many`` (``LanceDBIndexer.search``'s kernel)
on the collection's vectors tiled to ~256k: a per-page scan cost without the fixed costs.

Model rows (``"through": "model"``) assume: an encoder worker runs at the measured
per-page encode rate on ``--threads`` threads and N workers scale linearly (no scheduling
or network cost, the coordinator's commits never the bound); page production is capped at
N x ``--producers-per-encoder`` single-core producers at the measured rate; the object
store holds pages x measured stored bytes/page; S = ceil(pages / ``--shard-pages``) shards,
each holding its float32 cache in RAM (measured vectors/page x dim x 4 bytes); p50 =
(measured unsharded p50 - its scan) + kernel scan cost/page x pages per shard (linear) +
the measured fan-out overhead at S=2, taken as constant in S (shards are searched at once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

EXTRA_QUERIES = ("how to quote a string in bash", "shell parameter expansion",
                 "linear programming simplex method", "integer optimization problem",
                 "build a Debian package from upstream source")


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/retriever-distributed-bench"),
                    help="corpus and ONNX export, kept between runs")
    ap.add_argument("--keep", type=Path, help="write the collections here and keep them")
    ap.add_argument("--corpus", choices=("mixed", "text", "samples"), default="mixed",
                    help="mixed: manual pages + 3 scans + samples/; text: manual pages only")
    ap.add_argument("--pages", type=int, default=60, help="text-layer manual pages in all")
    ap.add_argument("--threads", type=int, default=2, help="torch and OMP threads, both runs")
    ap.add_argument("--workers", type=int, help="local producer processes (default: per core)")
    ap.add_argument("--encoders", type=int, default=1, help="Ray encoder actors")
    ap.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--model-encoders", type=int, nargs="+", default=[8, 64])
    ap.add_argument("--producers-per-encoder", type=int, default=2)
    # 100k pages keeps an exact float32 shard within one machine's RAM (about 6 GB of
    # MiniLM line vectors) and its scan well under a second on 2 threads
    ap.add_argument("--shard-pages", type=int, default=100_000)
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _files(args: argparse.Namespace) -> list[Path]:
    samples = sorted(p for p in (REPO / "samples").iterdir() if p.suffix in (".pdf", ".png"))
    if args.corpus == "samples":
        return samples
    import ingest_corpus

    corpus = ingest_corpus.build(args.workdir, math.ceil(args.pages / 3), 1, 1)
    return corpus.text + (corpus.scans + samples if args.corpus == "mixed" else [])


def _queries(n: int) -> list[str]:
    known = [q["query"] for q in json.loads((REPO / "samples" / "queries.json").read_text())]
    pool = known + list(EXTRA_QUERIES)
    return [pool[i % len(pool)] for i in range(n)]


def _median_s(fn: Any, items: list, warm: int = 2) -> tuple[float, float]:
    """(p50, p95) seconds of ``fn`` over ``items``, after ``warm`` untimed calls."""
    for item in items[:warm]:
        fn(item)
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.percentile(times, 95))


# --- per-stage costs, through the code a Ray task and actor run ------------------------


def _stage_costs(files: list[Path], root: Path) -> dict:
    """Page production (``pagework``, what ``produce_pages`` runs) and ``encode_pages``
    (what ``PageEncoder`` runs), one after the other in this process, wall s per page."""
    from retriever import Retriever
    from retriever.ingest import content_hash
    from retriever.ingest.pagework import (DocumentJob, ProducerSettings, open_job,
                                           produce_range, split_ranges)
    from retriever.ingest.producer import RANGE_PAGES
    from retriever.pipeline import page_batch
    from retriever.sdk import DEFAULT_MAX_PIXELS
    from retriever.types import Page, Region

    sdk = Retriever("stages", data_dir=root)  # never indexed into: only its components
    encoder, ocr = sdk.encoder, sdk._ocr_engine()  # noqa: SLF001 - the SDK's own OCR engine
    start = time.perf_counter()  # model load (and the ONNX export on a first run ever)
    encoder.encode_pages([Page("0" * 20, "warm", 1, 100, 100, regions=[
        Region((0.1, 0.1, 0.9, 0.2), "warm up the model", "paragraph")])])
    load = time.perf_counter() - start
    settings = ProducerSettings(encoder.dpi, DEFAULT_MAX_PIXELS, encoder.needs_image, ocr)
    pages: list[Page] = []
    ocr_pages = 0
    start = time.perf_counter()
    for path in files:
        job = DocumentJob(path, content_hash(path), str(path))
        for task in split_ranges(open_job(job, settings), job, RANGE_PAGES):
            for page in produce_range(task, settings):
                ocr_pages += not page.has_text_layer
                pages.append(page)
    produce = time.perf_counter() - start
    per_call, vectors = page_batch(encoder), 0
    start = time.perf_counter()
    for lo in range(0, len(pages), per_call):
        vectors += sum(len(mv.vectors) for mv in encoder.encode_pages(pages[lo:lo + per_call]))
    encode = time.perf_counter() - start
    n = len(pages)
    return {"kind": "stage", "through": "collection", "pages": n, "ocr_pages": ocr_pages,
            "model_load_s": round(load, 2), "produce_ms_per_page": round(1e3 * produce / n, 1),
            "encode_ms_per_page": round(1e3 * encode / n, 1),
            "vectors_per_page": round(vectors / n, 1), "dim": encoder.dim}


# --- the two indexing runs ---------------------------------------------------------------


def _index_row(path: str, report: Any, seconds: float, where: Path, **extra: Any) -> dict:
    return {"kind": "index", "through": "collection", "path": path, "pages": report.pages,
            "encoded_pages": report.encoded_pages, "files": len(report.indexed),
            "failed": len(report.failed), "seconds": round(seconds, 2),
            "pages_per_s": round(report.pages / seconds, 2),
            "disk_bytes_per_page": round(_dir_bytes(where) / max(report.pages, 1)), **extra}


def _local_run(files: list[Path], root: Path, workers: int | None) -> dict:
    from retriever import Retriever

    with Retriever("local", data_dir=root) as sdk:  # the model loads inside the clock,
        start = time.perf_counter()                   # as it does in each Ray actor
        report = sdk.index(files, workers=workers)
        seconds = time.perf_counter() - start
        return _index_row("local", report, seconds, Path(sdk.path),
                          workers=workers or os.cpu_count())


def _ray_run(ray: Any, files: list[Path], root: Path, args: argparse.Namespace) -> dict:
    from retriever import Retriever
    from retriever.distributed import RayIndexOptions

    start = time.perf_counter()  # joined by ray_index_files, so its own clock excludes it
    ray.init(num_cpus=args.ray_cpus, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    startup = time.perf_counter() - start
    with Retriever("ray", data_dir=root) as sdk:
        start = time.perf_counter()
        report = sdk.index(files, ray=RayIndexOptions(encoders=args.encoders))
        seconds = time.perf_counter() - start
        row = _index_row("ray", report, seconds, Path(sdk.path), encoders=args.encoders,
                         ray_cpus=args.ray_cpus, ray_init_s=round(startup, 2))
    # after the clock: what a Ray worker really got (a pinned pool, or Ray's own default)
    row["worker_omp_threads"] = ray.get(ray.remote(
        lambda: os.environ.get("OMP_NUM_THREADS")).remote())
    return row


# --- search: cache bytes, scan cost, unsharded against sharded ----------------------------


def _scan_row(root: Path, query: str) -> dict:
    """Bytes of the float32 cache per page, and MaxSim cost per page from the product's
    kernel on the collection's own vectors tiled to ~256k (fixed costs cancel)."""
    from retriever import Retriever
    from retriever.search.scoring_torch import exact_maxsim_many

    with Retriever("ray", data_dir=root) as sdk:
        cache = sdk.indexer._vectors()  # noqa: SLF001 - a benchmark may look at the cache
        (q,) = sdk.encoder.encode_queries([query])
    vectors, offsets, pages = cache.vectors, cache.offsets, len(cache.keys)
    reps = max(2, 262_144 // max(len(vectors), 1))
    big = np.tile(vectors, (reps, 1))  # (reps * N, d)
    big_offsets = np.concatenate([offsets[:-1] + r * len(vectors) for r in range(reps)]
                                 + [np.asarray([reps * len(vectors)])])

    small_s, _ = _median_s(lambda _: exact_maxsim_many([q.vectors], vectors, offsets), [0] * 7)
    big_s, _ = _median_s(lambda _: exact_maxsim_many([q.vectors], big, big_offsets), [0] * 7)
    per_page = (big_s - small_s) / (pages * (reps - 1))
    return {"kind": "scan", "through": "kernel", "pages": pages, "tiled_pages": pages * reps,
            "cache_dtype": str(vectors.dtype), "cache_bytes_per_page": round(
                (vectors.nbytes + offsets.nbytes) / pages),
            "scan_us_per_page": round(1e6 * per_page, 3),
            "scan_ms_at_collection": round(1e3 * per_page * pages, 3)}


def _search_rows(root: Path, queries: list[str]) -> list[dict]:
    from retriever import Retriever
    from retriever.distributed import ShardedRetriever, shard_collection

    with Retriever("ray", data_dir=root) as sdk:  # the same 5 hits, vectors only, both
        plain = _median_s(lambda q: sdk.search(q, k=5, mode="vector"), queries)
        pages = sdk.info()["pages"]
    start = time.perf_counter()
    split = shard_collection("ray", 2, data_dir=root)
    split_s = time.perf_counter() - start
    start = time.perf_counter()
    with ShardedRetriever("ray", data_dir=root, shards=2) as sharded:
        ready = time.perf_counter() - start
        fanned = _median_s(lambda q: sharded.search(q, k=5, mode="vector"), queries)
    base = {"kind": "search", "through": "collection", "pages": pages, "mode": "vector",
            "k": 5, "queries": len(queries)}
    return [{**base, "path": "unsharded", "shards": 1, "p50_ms": round(1e3 * plain[0], 2),
             "p95_ms": round(1e3 * plain[1], 2)},
            {**base, "path": "sharded (Ray actors)", "shards": 2,
             "shard_pages": split.pages, "split_s": round(split_s, 2),
             "actors_ready_s": round(ready, 2), "p50_ms": round(1e3 * fanned[0], 2),
             "p95_ms": round(1e3 * fanned[1], 2),
             "fanout_overhead_ms": round(1e3 * (fanned[0] - plain[0]), 2)}]


# --- the model ------------------------------------------------------------------------


def _model_rows(stage: dict, ray_row: dict, scan: dict, search: list[dict],
                args: argparse.Namespace) -> list[dict]:
    encode_rate = 1e3 / stage["encode_ms_per_page"]  # pages/s of one encoder worker
    produce_rate = 1e3 / stage["produce_ms_per_page"]  # pages/s of one producing core
    fixed_ms = search[0]["p50_ms"] - scan["scan_ms_at_collection"]  # encode, rank, ground
    fanout_ms = search[1]["fanout_overhead_ms"]
    rows = []
    for pages in (1_000_000, 10_000_000, 100_000_000):
        shards = math.ceil(pages / args.shard_pages)
        per_shard = math.ceil(pages / shards)
        for n in args.model_encoders:
            encode_cap = n * encode_rate
            produce_cap = n * args.producers_per_encoder * produce_rate
            rate = min(encode_cap, produce_cap)
            rows.append({
                "kind": "model", "through": "model", "pages": pages, "encoders": n,
                "producers": n * args.producers_per_encoder, "threads": args.threads,
                "pages_per_s": round(rate, 1),
                "limited_by": "encode" if encode_cap <= produce_cap else "produce",
                "wall_h": round(pages / rate / 3600, 2),
                "worker_hours": round(n * pages / rate / 3600, 1),  # what the job costs
                "object_store_gb": round(pages * ray_row["disk_bytes_per_page"] / 1e9, 1),
                "shards": shards, "pages_per_shard": per_shard,
                "ram_per_shard_gb": round(per_shard * scan["cache_bytes_per_page"] / 1e9, 1),
                "ram_basis": f"float32 cache, {stage['vectors_per_page']} vectors/page x "
                             f"{stage['dim']} x 4 B",
                "p50_ms": round(fixed_ms + scan["scan_us_per_page"] * per_shard / 1e3
                                + fanout_ms, 1)})
    return rows


# --- the report -------------------------------------------------------------------------


def _print_table(rows: list[dict]) -> None:
    for r in rows:
        kind = r["kind"]
        if kind == "machine":
            print(f"machine: {r['cores']} cores, load {r['load']} -> {r['load_after']}, "
                  f"{r['threads']} threads; "
                  f"corpus {r['corpus']}: {r['files']} files")
        elif kind == "stage":
            print(f"\nstages ({r['pages']} pages, {r['ocr_pages']} OCRed): produce "
                  f"{r['produce_ms_per_page']} ms/page, encode {r['encode_ms_per_page']} "
                  f"ms/page, {r['vectors_per_page']} vectors/page x {r['dim']}; model "
                  f"load {r['model_load_s']} s")
        elif kind == "index":
            extra = (f"\n  + ray.init {r['ray_init_s']} s apart, {r['encoders']} encoder(s), "
                     f"workers' OMP={r['worker_omp_threads']}; ray/local {r['ray_over_local']}x"
                     f" ({r['with_init_over_local']}x with ray.init)" if r["path"] == "ray"
                     else f", {r['workers']} producer processes")
            print(f"index {r['path']:<5}: {r['pages']} pages in {r['seconds']} s = "
                  f"{r['pages_per_s']} pages/s, {r['disk_bytes_per_page']} B/page on disk, "
                  f"{r['failed']} failed{extra}")
        elif kind == "scan":
            print(f"\nscan (kernel, {r['tiled_pages']} tiled pages): {r['scan_us_per_page']} "
                  f"us/page; cache {r['cache_bytes_per_page']} B/page ({r['cache_dtype']})")
        elif kind == "search":
            extra = (f"; fan-out overhead {r['fanout_overhead_ms']} ms, split "
                     f"{r['split_s']} s, actors ready {r['actors_ready_s']} s"
                     if r["shards"] > 1 else "")
            print(f"search {r['path']:<20} {r['pages']} pages: p50 {r['p50_ms']} ms, "
                  f"p95 {r['p95_ms']} ms{extra}")
        elif kind == "model":
            print(f"model {r['pages']:>11,} pages, {r['encoders']:>3} encoders: "
                  f"{r['pages_per_s']:>8} pages/s ({r['limited_by']}), {r['wall_h']:>8} h, "
                  f"store {r['object_store_gb']} GB, {r['shards']} shards x "
                  f"{r['ram_per_shard_gb']} GB RAM, p50 {r['p50_ms']} ms")


def main() -> None:
    args = _parse()
    # pinned before torch, onnxruntime or Ray start: the Ray workers inherit the same
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
    os.environ["RETRIEVER_CACHE_DIR"] = str(args.workdir / "cache")  # export made once
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([old] if old else []))
    import torch

    torch.set_num_threads(args.threads)
    from retriever.distributed.cluster import import_ray

    ray = import_ray("this benchmark runs Ray Data", data=True)
    export_in_run = not (args.workdir / "cache").exists()  # then model_load_s includes it
    files = _files(args)
    rows: list[dict] = [{"kind": "machine", "cores": os.cpu_count(), "threads": args.threads,
                         "corpus": args.corpus, "files": len(files),
                         "onnx_export_in_run": export_in_run,
                         "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}]
    if args.keep is not None and (args.keep / "data").exists():
        sys.exit(f"{args.keep / 'data'} exists: the runs need fresh collections")
    args.workdir.mkdir(parents=True, exist_ok=True)
    tmp = None if args.keep else tempfile.TemporaryDirectory(dir=args.workdir)
    root = (args.keep or Path(tmp.name)) / "data"  # type: ignore[union-attr]
    try:
        log(f"stage costs over {len(files)} files ...")
        rows.append(stage := _stage_costs(files, root))
        log("local pipeline ...")
        rows.append(local := _local_run(files, root, args.workers))
        log("Ray Data ...")
        rows.append(remote := _ray_run(ray, files, root, args))
        remote["ray_over_local"] = round(remote["seconds"] / local["seconds"], 2)
        remote["with_init_over_local"] = round(
            (remote["seconds"] + remote["ray_init_s"]) / local["seconds"], 2)
        log("search ...")
        queries = _queries(args.queries)
        rows.append(scan := _scan_row(root, queries[0]))
        rows.extend(search := _search_rows(root, queries))
        rows.extend(_model_rows(stage, remote, scan, search, args))
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if tmp is not None:
            tmp.cleanup()
    rows[0]["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())  # shared machine?
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        _print_table(rows)


if __name__ == "__main__":
    main()

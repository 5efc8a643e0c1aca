"""The rows of benchmarks/search.py: timing, recall, the table and the JSON lines."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

K = 10
ROWS: list[dict] = []
EXTRA: list[dict] = []  # measurements that are not a search row (commits, concurrency)
CEILING: dict[str, float] = {}  # pages/s of one query's matmul work, measured in main()
THREADS = [1]  # the thread count every system is pinned to, set by main()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def timed(fn, items) -> tuple[np.ndarray, list]:
    fn(items[0])  # warm-up: lazy imports, thread pools, page cache
    times, outs = [], []
    for item in items:
        start = time.perf_counter()
        outs.append(fn(item))
        times.append(time.perf_counter() - start)
    return np.array(times), outs


def recall(rankings: list, exact: list) -> float:
    return float(np.mean([len(set(map(int, r[:K])) & set(map(int, e))) / K
                          for r, e in zip(rankings, exact)]))


def through_of(system: str) -> str:
    if "LanceDBIndexer" in system or "FaissIndexer" in system:
        return "collection"
    return "kernel" if system.startswith("ours") else "peer"


def add_row(section: str, system: str, n: int, times: np.ndarray, rankings, exact, *,
            per_call: int = 1, ram: float | None = None, disk: float | None = None,
            build: float | None = None, note: str = "") -> None:
    per_query = times / per_call
    # pages/s only where every page is scored: a two-stage search scores a few
    scored_all = section == "exact" or "full scan" in system
    ROWS.append(dict(section=section, system=system, through=through_of(system), n=n,
                     p50=np.median(per_query) * 1e3,
                     p95=np.percentile(per_query, 95) * 1e3,
                     pps=n / np.median(per_query) if scored_all else None,
                     recall=recall(rankings, exact) if rankings is not None else None,
                     ram=ram, disk=disk, build=build, note=note))
    r = ROWS[-1]
    log(f"  {section} {system} n={n}: p50 {r['p50']:.1f} ms"
        + (f", {r['pps']:.0f} pages/s" if r["pps"] is not None else "")
        + (f", recall {r['recall']:.3f}" if r["recall"] is not None else ""))


def round_robin(systems: dict, queries: list) -> dict:
    """Time several systems query by query, taking turns, so a load that comes and goes
    on a shared machine hits them alike. ``systems``: name -> (fn, how many queries)."""
    for fn, _ in systems.values():
        fn(queries[0])  # warm-up: lazy imports, thread pools, page cache
    runs = {name: ([], []) for name in systems}
    for i, query in enumerate(queries):
        for name, (fn, limit) in systems.items():
            if i < limit:
                start = time.perf_counter()
                runs[name][1].append(fn(query))
                runs[name][0].append(time.perf_counter() - start)
    return {name: (np.array(t), out) for name, (t, out) in runs.items()}


def print_table() -> None:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    ceiling = CEILING["pages_per_s"]
    print(f"\n{'section':9} {'system':64} {'via':10} {'pages':>7} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'pages/s':>8} {'ceil%':>6} {'recall':>6} {'RAM KB/p':>9} "
          f"{'disk KB/p':>9} {'build s':>8}")
    for r in ROWS:
        ceil = f"{100 * r['pps'] / ceiling:.0f}" if r["section"] == "exact" else "-"
        print(f"{r['section']:9} {r['system'][:64]:64} {r['through']:10} {r['n']:7d} "
              f"{r['p50']:8.1f} {r['p95']:8.1f} {f(r['pps'], '8.0f'):>8} {ceil:>6} "
              f"{f(r['recall'], '.3f'):>6} {f(r['ram'], '.1f'):>9} {f(r['disk'], '.1f'):>9} "
              f"{f(r['build'], '.1f'):>8}")


def print_json() -> None:
    for r in ROWS:
        print(json.dumps({
            "system": r["system"], "through": r["through"], "pages": r["n"],
            "threads": THREADS[0], "p50_ms": round(r["p50"], 2),
            "p95_ms": round(r["p95"], 2), "recall_at_10": r["recall"],
            "ram_kb_per_page": r["ram"], "disk_kb_per_page": r["disk"],
            "build_s": r["build"], "pages_per_s": r["pps"],
            "ceiling_pages_per_s": CEILING["pages_per_s"],
            "code_matmul": CEILING["code_matmul"],
            "binary_kernel": CEILING["binary_kernel"], "section": r["section"]}))

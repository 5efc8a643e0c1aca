"""Cold ``retriever search``: a fresh process per query, end to end, and where the time goes.

    python benchmarks/latency_cold.py               # 7 runs per row
    python benchmarks/latency_cold.py --runs 3      # a quick look
    python benchmarks/latency_cold.py --json        # one JSON object per row

Setup (once, timed and reported): the five sample documents indexed into a default
collection in ``--workdir`` (``RETRIEVER_HOME``), which also exports the query model to
ONNX into ``--workdir``'s cache (``RETRIEVER_CACHE_DIR``). Then every row starts a new
Python process, as a user's shell does:

* floors: ``python -c pass``, ``import retriever``, ``retriever --help``;
* ``retriever search`` through the CLI entry point (what a user runs), with the default
  MaxSim kernel and with ``RETRIEVER_KERNEL=numpy`` (the kernel picks torch whenever it is
  installed, which imports torch for a 7-page collection);
* the SDK with ``query_backend=torch`` (the query path before the ONNX one) and ``auto``.

Then a phase breakdown (median over the runs, fresh processes: imports, opening the
collection, creating the encoder, loading the query model, encoding, search, grounding;
whether torch got imported), and the top import offenders from ``python -X importtime``.
Same thread count for every row (``--threads``, default 2). Wall times on this shared
2-core machine vary; compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERY = "how much interest do I pay if I settle the invoice late?"

#: one fresh process: time each phase of a search through the SDK's own pieces
_PHASES = r"""
import json, sys, time
t0 = time.perf_counter()
from retriever import Retriever
t1 = time.perf_counter()
r = Retriever(encoder_options=json.loads(sys.argv[2]))
indexer = r.indexer
t2 = time.perf_counter()
encoder = r.encoder
t3 = time.perf_counter()
encoder._query_model()
t4 = time.perf_counter()
(qv,) = encoder.encode_queries([sys.argv[1]])
t5 = time.perf_counter()
(scored,) = indexer.search([qv], 5)
t6 = time.perf_counter()
from retriever.grounding import ground
for record in indexer.get([s.key for s in scored]):
    ground(qv, record.embedding, record.regions)
t7 = time.perf_counter()
print(json.dumps({"import retriever": t1 - t0, "open collection": t2 - t1,
                  "create encoder": t3 - t2, "load query model": t4 - t3,
                  "encode query": t5 - t4, "search": t6 - t5, "ground": t7 - t6,
                  "total in process": t7 - t0, "torch imported": "torch" in sys.modules,
                  "lancedb imported": "lancedb" in sys.modules,
                  "query model": type(encoder._query_model()).__name__}))
"""


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="fresh processes per row")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/retriever-cold-bench"))
    ap.add_argument("--top", type=int, default=12, help="import offenders listed")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def _env(args: argparse.Namespace, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "LANCE_CPU_THREADS"):
        env[var] = str(args.threads)
    env.update(RETRIEVER_HOME=str(args.workdir / "home"),
               RETRIEVER_CACHE_DIR=str(args.workdir / "cache"),
               PYTHONPATH=str(REPO), RETRIEVER_LOAD_PLUGINS="")
    env.pop("RETRIEVER_KERNEL", None)
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed ({done.returncode}):\n{done.stderr}")
    return seconds, done.stdout


def _setup(args: argparse.Namespace) -> dict:
    home = args.workdir / "home"
    if (home / "collections" / "default").is_dir():
        return {"setup": "reused"}
    cli = [sys.executable, "-m", "cli.main"]
    seconds, _ = _run(cli + ["index", str(REPO / "samples")], _env(args))
    exports = list((args.workdir / "cache").glob("onnx/*/model.onnx"))
    return {"setup": "indexed samples/", "index_s": round(seconds, 2),
            "onnx_export": [str(p) for p in exports]}


def _stats(times: list[float]) -> dict:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_s": round(statistics.median(ordered), 3), "min_s": round(ordered[0], 3),
            "p95_s": round(p95, 3), "runs": len(ordered)}


def _rows(args: argparse.Namespace) -> list[dict]:
    py, cli = sys.executable, [sys.executable, "-m", "cli.main"]
    sdk = ("import json,sys\nfrom retriever import Retriever\n"
           "r = Retriever(encoder_options=json.loads(sys.argv[2]))\n"
           "print(len(r.search(sys.argv[1], 5)))")
    cases = [
        ("python -c pass", [py, "-c", "pass"], {}),
        ("import retriever", [py, "-c", "import retriever"], {}),
        ("retriever --help", cli + ["--help"], {}),
        ("retriever search (CLI)", cli + ["search", QUERY], {}),
        ("retriever search, RETRIEVER_KERNEL=numpy", cli + ["search", QUERY],
         {"RETRIEVER_KERNEL": "numpy"}),
        ("SDK search, query_backend=torch", [py, "-c", sdk, QUERY, '{"query_backend": "torch"}'],
         {}),
        ("SDK search, query_backend=auto (ONNX)", [py, "-c", sdk, QUERY, "{}"], {}),
        ("SDK search, ONNX + RETRIEVER_KERNEL=numpy", [py, "-c", sdk, QUERY, "{}"],
         {"RETRIEVER_KERNEL": "numpy"}),
    ]
    rows = []
    for name, cmd, extra in cases:
        env = _env(args, **extra)
        _run(cmd, env)  # warm the page cache: cold means a new process, not a cold disk
        times = [_run(cmd, env)[0] for _ in range(args.runs)]
        rows.append({"row": name, **_stats(times)})
    return rows


def _phases(args: argparse.Namespace, backend: str, **extra: str) -> dict:
    options = json.dumps({} if backend == "auto" else {"query_backend": backend})
    runs = [json.loads(_run([sys.executable, "-c", _PHASES, QUERY, options],
                            _env(args, **extra))[1]) for _ in range(args.runs)]
    out: dict = {"row": f"phases, query_backend={backend}"
                        + "".join(f", {k}={v}" for k, v in extra.items())}
    for key, value in runs[0].items():
        if isinstance(value, float):
            out[key] = round(statistics.median(r[key] for r in runs), 3)
        else:
            out[key] = value
    return out


def _import_offenders(args: argparse.Namespace, **extra: str) -> list[dict]:
    """Top-level imports of one cold CLI search by cumulative time (``-X importtime``)."""
    env = _env(args, **extra)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli.main", "search",
                           QUERY], env=env, cwd=REPO, capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        # top-level entries only: a nested import is indented under its importer
        if cumulative.strip().isdigit() and not name[1:].startswith(" "):
            rows.append({"module": name.strip(), "cumulative_s": int(cumulative) / 1e6})
    rows.sort(key=lambda r: -r["cumulative_s"])
    return rows[:args.top]


def main() -> None:
    args = _parse()
    args.workdir.mkdir(parents=True, exist_ok=True)
    setup = _setup(args)
    rows = _rows(args)
    phases = [_phases(args, "torch"), _phases(args, "auto"),
              _phases(args, "auto", RETRIEVER_KERNEL="numpy")]
    offenders = {kernel: _import_offenders(args, **extra) for kernel, extra in
                 (("default kernel", {}), ("RETRIEVER_KERNEL=numpy",
                                           {"RETRIEVER_KERNEL": "numpy"}))}
    if args.json:
        print(json.dumps(setup))
        for row in rows + phases:
            print(json.dumps(row))
        for kernel, found in offenders.items():
            print(json.dumps({"imports": kernel, "top": found}))
        return
    print(f"setup: {setup}")
    print(f"\n{'row':44} {'median s':>9} {'min s':>7} {'p95 s':>7}")
    for r in rows:
        print(f"{r['row']:44} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['p95_s']:7.3f}")
    keys = [k for k in phases[0] if k != "row"]
    print(f"\nphase breakdown (median of {args.runs} fresh processes, seconds):")
    print(f"{'':24}" + "".join(f"{p['row'].replace('phases, ', ''):>46}" for p in phases))
    for key in keys:
        print(f"{key:24}" + "".join(f"{str(p[key]):>46}" for p in phases))
    for kernel, found in offenders.items():
        print(f"\ntop-level imports of one cold CLI search ({kernel}), cumulative:")
        for r in found:
            print(f"  {r['cumulative_s']:6.3f} s  {r['module']}")


if __name__ == "__main__":
    main()

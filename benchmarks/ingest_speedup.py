"""``retriever index`` now against an earlier revision, on the same mixed corpus, end to end.

    python benchmarks/quality_setup.py                       # the corpus, once
    python benchmarks/ingest_speedup.py --before 2cab75d     # that revision vs the tree
    python benchmarks/ingest_speedup.py --before 2cab75d --runs 2 --json

What a user waits for: a fresh ``python -m cli index CORPUS`` process per row (imports,
model load, every page), into a new data directory each time. The earlier revision runs
from a ``git worktree`` of it with the same virtual environment, so only the project's
code differs. Rows: the revision given (``before``), this tree with its defaults, and this
tree with ``-o backend=torch --workers 0`` (pages on torch, no worker processes: what the
two changes of the ingestion issue are each worth), and this tree with ``-o
backend=onnx-int8`` (pages on the int8 export, the opt-in faster encoder). ``--rows``
picks some of them; the first is the base of the speedup. The corpus is a mixed one like the
issue's: one 40-page text-layer manual plus 16 pages as PNGs and degraded scans that go
through OCR (``quality_setup.py``'s ``developers-reference.pdf`` and every image page).

For each row: wall seconds, pages/s, CPU seconds of the process and its children (user +
system), and ``wall / (CPU / cores)``: how close the run comes to the bound its own CPU
time sets on this machine (1.0 = every core busy for the whole run). Rows alternate over
``--runs`` rounds so a change of machine load hits all of them; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _corpus(root: Path) -> tuple[Path, int]:
    from quality_setup import build_corpus, corpus_dir

    full = build_corpus(corpus_dir(None, None))
    root.mkdir(parents=True, exist_ok=True)
    for item in [full / "developers-reference.pdf", *sorted(full.glob("*.png")),
                 *sorted(full.glob("*.jpg"))]:
        shutil.copy(item, root / item.name)
    pages = 0
    for item in root.iterdir():
        if item.suffix == ".pdf":
            info = subprocess.run(["pdfinfo", str(item)], capture_output=True, text=True)
            pages += int(next(line.split()[-1] for line in info.stdout.splitlines()
                              if line.startswith("Pages:")))
        else:
            pages += 1
    return root, pages


def _run(code: Path, corpus: Path, extra: list[str], threads: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads),
           "RETRIEVER_LOAD_PLUGINS": ""}
    with tempfile.TemporaryDirectory(prefix="ingest-speedup-") as home:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "cli", "index", str(corpus),
                               "--data-dir", home, "--json", *extra], cwd=code, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"index failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = json.loads(proc.stdout)
    return {"wall_s": wall, "cpu_s": cpu, "pages": report["pages"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git revision to compare with")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=lambda text: [r.strip() for r in text.split(",")],
                    default=["before", "now", "torch", "int8"],
                    help="comma-separated rows to run: before, now, torch, int8 (the first "
                         "is the speedup's base)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="ingest-speedup-") as tmp:
        corpus, pages = _corpus(Path(tmp) / "corpus")
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(old), args.before],
                       cwd=REPO, check=True)
        try:
            every = {"before": ("before", old, []), "now": ("now", REPO, []),
                     "torch": ("now, torch pages, no workers", REPO,
                               ["-o", "backend=torch", "--workers", "0"]),
                     "int8": ("now, int8 pages", REPO, ["-o", "backend=onnx-int8"])}
            unknown = set(args.rows) - set(every)
            if unknown:
                raise SystemExit(f"unknown row(s) {sorted(unknown)}; rows: {list(every)}")
            rows = {every[key][0]: every[key][1:] for key in args.rows}
            results: dict[str, list[dict[str, float]]] = {name: [] for name in rows}
            for _ in range(args.runs):
                for name, (code, extra) in rows.items():
                    results[name].append(_run(code, corpus, extra, args.threads))
                    print(f"{name}: {results[name][-1]['wall_s']:.1f} s", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO,
                           check=False)
    base = statistics.median(r["wall_s"] for r in next(iter(results.values())))
    out = []
    for name, runs in results.items():
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        out.append({"row": name, "pages": pages, "wall_s": round(wall, 1),
                    "pages_per_s": round(pages / wall, 2), "cpu_s": round(cpu, 1),
                    "speedup": round(base / wall, 2),
                    "wall_over_cpu_bound": round(wall / (cpu / cores), 2)})
    load = os.getloadavg()[0]
    if args.json:
        for row in out:
            print(json.dumps({**row, "cores": cores, "load": round(load, 1)}))
        return
    print(f"{pages} pages ({corpus.name}), {cores} cores, {args.threads} threads, "
          f"load average {load:.1f}, median of {args.runs}")
    print(f"{'row':32} {'wall s':>7} {'pages/s':>8} {'CPU s':>7} {'speedup':>8} "
          f"{'wall/bound':>10}")
    for row in out:
        print(f"{row['row']:32} {row['wall_s']:7.1f} {row['pages_per_s']:8.2f} "
              f"{row['cpu_s']:7.1f} {row['speedup']:8.2f} {row['wall_over_cpu_bound']:10.2f}")


if __name__ == "__main__":
    main()

"""Crash soak: SIGKILL ``Retriever.index`` at random moments, check the collection, resume.

    python benchmarks/crash_soak.py                          # 200 kills, lancedb and faiss
    python benchmarks/crash_soak.py --kills 20               # a quick look
    python benchmarks/crash_soak.py --backend faiss --kills 50 --json
    python benchmarks/crash_soak.py --corpus small --kills 4 --json    # what the test runs

Corpus (built in ``--workdir``): the sample documents of ``samples/`` (text PDFs, a scanned
PDF and a scanned PNG that need tesseract), real PDFs that Debian ships cut to 10-16 pages
with ``pdfseparate``/``pdfunite`` (so a document spans several page batches) and a PNG
rendered from one of them; a pool of further real documents is what the corpus mutates
into. ``--corpus small`` (for the test) is two one-page sample PDFs and a 3-page one to
mutate into, no OCR, encoded two pages per batch (``--page-batch``) so that the 3-page
document still spans two batches.

How: the parent process imports retriever and torch (one thread) and builds the default
encoder (text/minilm, its default page backend) once; it never opens a collection nor an
onnxruntime session itself (LanceDB and onnxruntime start threads that a fork does not
carry), so each child opens its own. Every trial ``fork()``s a child that runs
``Retriever(...).index([corpus], sync=True)`` with that encoder, and the child dies by
SIGKILL in one of two ways, half the trials each: the parent kills its process group
(tesseract and poppler included) after a random delay, uniform over the time an
uninterrupted run of the same work takes (measured per document by a calibration run),
or the child kills itself just before or just after its k-th write, k uniform over the
writes that run makes (the write seams of ``tests/consistency.py``: staged batches, FAISS
files, LanceDB table creation, merge-insert batches, deletes, the full-text refresh), so
that kills land inside and between the steps of commits, not only while pages are
encoded. Before most trials the corpus changes (a file is edited, i.e. gets a new
version; takes another document's content; a file is added, copied or deleted), some
trials start from an empty collection and some re-index with ``force``, so that replace,
delete, relink and create are killed as well as plain adds.

After each kill a forked child checks the collection (``tests/consistency.py``: it opens;
each document's pages are exactly 1..n once each; each document is the current or, for a
file the killed run had not reached, the previous content of its file; no file stored
twice or lost; searches return whole documents only), then another child resumes (the
same ``index`` again, uninterrupted) and the collection is checked again, now as a
complete run (everything current, nothing staged). Reported per backend: kills (trials
whose child finished before its kill are counted apart), kills that found a problem, the
problems, where the kills landed, and the pages the resumes encoded against the minimum
(the pages of documents not committed at the kill, less those staged by the killed run
when the collection stages page batches: ``Retriever.pending()``), plus the work the kills
threw away (pages the killed run had reached of documents neither committed nor staged).

Runs the backends side by side (one lane per backend; ``--lanes 1`` for one after the
other). Exit status 1 when any kill left a problem.
"""

from __future__ import annotations

import os
import sys

# before anything imports torch, OpenMP or the tokenizers: no thread pools a fork would
# inherit half-alive, and tesseract on one thread per process
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_THREAD_LIMIT"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RETRIEVER_LOAD_PLUGINS", "")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[:0] = [str(REPO), str(REPO / "tests")]


from soak_child import Child, fork, preload_encoder, send  # noqa: E402
from soak_corpus import build_corpus, known_phrases  # noqa: E402
from soak_lane import run_lane  # noqa: E402

def _lane_process(fd: int, *args: Any) -> None:
    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    send(fd, {"e": "lane", "result": run_lane(*args, log=log)})


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=200, help="SIGKILLs in all, split over backends")
    ap.add_argument("--backend", default="lancedb,faiss", help="comma-separated backends")
    ap.add_argument("--corpus", choices=("full", "small"), default="full")
    ap.add_argument("--page-backend", default="auto",
                    help="text/minilm's backend option: auto (onnxruntime on a CPU), torch, onnx")
    ap.add_argument("--page-batch", type=int, default=None,
                    help="pages per encoder batch and staged batch (default: the pipeline's "
                         "8; 2 with --corpus small)")
    ap.add_argument("--lanes", type=int, default=2, help="backends run side by side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/retriever-crash-soak"))
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


def main() -> int:
    args = _parse()
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RETRIEVER_CACHE_DIR", str(args.workdir / "cache"))
    t0 = time.monotonic()
    files, pool, notes = build_corpus(args.workdir / "corpus", args.corpus)
    page_batch = args.page_batch or (2 if args.corpus == "small" else None)
    preload_encoder(page_batch, args.page_backend)
    phrases = known_phrases([*files, *pool])
    setup = {"setup_s": round(time.monotonic() - t0, 1), "page_batch": page_batch,
             "page_backend": args.page_backend,
             "files": [f.name for f in files],
             "pool": [f.name for f in pool], "phrases": len(phrases), "notes": notes}
    print(f"setup: {setup}", file=sys.stderr, flush=True)
    per_backend = math.ceil(args.kills / len(backends))
    threaded = [m for m in ("lancedb", "lance", "onnxruntime", "faiss") if m in sys.modules]
    if threaded:  # their thread pools would not survive the forks
        raise SystemExit(f"the parent imported {threaded} before forking")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results: list[dict[str, Any]] = []
    if args.lanes > 1 and len(backends) > 1:
        lanes = [Child(*fork(_lane_process, b, per_backend, args.workdir, files, pool, phrases,
                              args.seed)) for b in backends]
        for b, lane in zip(backends, lanes):
            lane.run(limit=24 * 3600)
            got = lane.last("lane")
            if got is None:
                raise SystemExit(f"the {b} lane failed: {lane.last('error')}")
            results.append(got["result"])
    else:
        results = [run_lane(b, per_backend, args.workdir, files, pool, phrases, args.seed, log)
                   for b in backends]
    total = {"backend": "total", **{k: sum(r[k] for r in results) for k in (
        "kills", "finished_before_kill", "inconsistent_kills", "resume_failures",
        "encoded_after_resume", "minimum", "excess", "lost_pages")},
        "seconds": round(time.monotonic() - t0, 1)}
    if args.json:
        print(json.dumps(setup))
        for row in [*results, total]:
            print(json.dumps(row))
    else:
        print(f"\n{'backend':9} {'kills':>5} {'early':>5} {'bad':>4} {'resume!':>7} "
              f"{'encoded':>8} {'minimum':>8} {'excess':>6} {'lost':>5} {'cycle s':>8}")
        for r in [*results, total]:
            print(f"{r['backend']:9} {r['kills']:5d} {r['finished_before_kill']:5d} "
                  f"{r['inconsistent_kills']:4d} {r['resume_failures']:7d} "
                  f"{r['encoded_after_resume']:8d} {r['minimum']:8d} {r['excess']:6d} "
                  f"{r['lost_pages']:5d} {str(r.get('median_cycle_s', '')):>8}")
        for r in results:
            print(f"\n{r['backend']}: kills landed {r['kill_phase']}; trials {r['kinds']}; "
                  f"calibration {r['calibration']}; staging detected: {r['staging']}; "
                  f"phrases dropped: {r['phrases_dropped']}")
            for p in r["problems"]:
                print(f"  PROBLEM {json.dumps(p)[:2000]}")
        print("\nbad: kills after which a check failed; early: children that finished before "
              "their kill (not counted as kills); encoded / minimum: pages the resumes "
              "encoded / the least they had to; lost: pages a killed run had reached of "
              "documents neither committed nor staged at the kill")
    return 1 if total["inconsistent_kills"] else 0


if __name__ == "__main__":
    sys.exit(main())

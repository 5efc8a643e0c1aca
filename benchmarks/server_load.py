"""Search latency of ``retriever serve`` under load, while an upload indexes.

    python benchmarks/server_load.py                    # 8 clients x 50 searches, one upload
    python benchmarks/server_load.py --clients 8 --searches 50 --json

What it does, all on loopback:

1. indexes the text-layer samples (annual report, invoice, slide) into a fresh collection
   with the default encoder (``retriever index``, a subprocess);
2. starts a real server (``retriever serve --port P``, a subprocess: uvicorn, FastAPI);
3. warms it with one search, then uploads ``--upload`` (default: the 36-page libtasn1
   manual that Debian ships, else the scanned receipt) into the same collection and, at
   the same time, runs ``--clients`` threads of ``--searches`` searches each
   (``POST /search``, k=5 with regions, queries from ``samples/queries.json`` in turn);
4. prints the searches' p50 / p95 / max latency, the errors (any non-200 or transport
   error), how many searches ran while the upload was still indexing, and the upload's
   own time and status.

Latency is measured by the client (request sent to response read), so it includes HTTP,
JSON and queueing behind the other clients: with 8 clients on a 2-core machine, most of
a request's time is waiting for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
SEED = ["annual-report.pdf", "invoice.pdf", "slide.pdf"]
DEFAULT_UPLOADS = [Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
                   SAMPLES / "scanned-receipt.pdf"]


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--searches", type=int, default=50, help="per client")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--upload", type=Path, default=None, help="file uploaded during the load")
    ap.add_argument("--data-dir", type=Path, default=None, help="default: a temporary one")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    return ap.parse_args()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "RETRIEVER_HOME": str(home)}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _wait_healthy(client, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            if client.get("/healthz").status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become healthy")


def run(args: argparse.Namespace, home: Path) -> dict:
    import httpx

    upload = args.upload or next(p for p in DEFAULT_UPLOADS if p.exists())
    queries = [q["query"] for q in json.loads((SAMPLES / "queries.json").read_text())]
    subprocess.run(_cli("index", *(str(SAMPLES / n) for n in SEED), "-c", "bench",
                        "--data-dir", str(home), "--workers", "0"),
                   check=True, env=_env(home), cwd=REPO, stdout=subprocess.DEVNULL)
    port = _free_port()
    server = subprocess.Popen(_cli("serve", "--port", str(port), "--data-dir", str(home),
                                   "--log-level", "warning"), env=_env(home), cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=300) as client:
            _wait_healthy(client, server)
            t0 = time.perf_counter()
            warm = client.post("/search", json={"query": queries[0], "collection": "bench"})
            warm.raise_for_status()
            warm_s = time.perf_counter() - t0

        uploading = threading.Event()
        upload_result: dict = {}

        def do_upload() -> None:
            with httpx.Client(base_url=base, timeout=1800) as client, open(upload, "rb") as f:
                uploading.set()
                start = time.perf_counter()
                response = client.post("/collections/bench/documents",
                                       files=[("files", (upload.name, f, "application/pdf"))])
                upload_result.update(seconds=time.perf_counter() - start,
                                     status=response.status_code,
                                     pages=response.json().get("pages"), end=time.perf_counter())

        def searches(worker: int) -> list[tuple[float, float, str | None]]:
            out = []
            with httpx.Client(base_url=base, timeout=300) as client:
                for i in range(args.searches):
                    query = queries[(worker * args.searches + i) % len(queries)]
                    start = time.perf_counter()
                    error = None
                    try:
                        response = client.post("/search", json={
                            "query": query, "collection": "bench", "k": args.k})
                        if response.status_code != 200:
                            error = f"HTTP {response.status_code}: {response.text[:200]}"
                    except httpx.HTTPError as exc:
                        error = repr(exc)
                    end = time.perf_counter()
                    out.append((end - start, end, error))
            return out

        with ThreadPoolExecutor(args.clients + 1) as pool:
            uploader = pool.submit(do_upload)
            uploading.wait()
            load_start = time.perf_counter()
            results = [r for rs in pool.map(searches, range(args.clients)) for r in rs]
            load_s = time.perf_counter() - load_start
            uploader.result()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    latencies = [r[0] * 1000 for r in results]
    errors = [r[2] for r in results if r[2]]
    during = sum(1 for r in results if r[1] < upload_result.get("end", 0))
    return {"clients": args.clients, "searches": len(results), "errors": len(errors),
            "error_samples": errors[:3], "p50_ms": round(statistics.median(latencies), 1),
            "p95_ms": round(_percentile(latencies, 95), 1),
            "max_ms": round(max(latencies), 1),
            "throughput_qps": round(len(results) / load_s, 1),
            "searches_during_upload": during, "warm_first_search_s": round(warm_s, 2),
            "upload": {"file": upload.name, "status": upload_result.get("status"),
                       "pages": upload_result.get("pages"),
                       "seconds": round(upload_result.get("seconds", 0.0), 1)},
            "cores": os.cpu_count()}


def main() -> int:
    args = _parse()
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        report = run(args, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="server-load-") as tmp:
            report = run(args, Path(tmp))
    if args.json:
        print(json.dumps(report))
    else:
        up = report["upload"]
        print(f"{report['searches']} searches from {report['clients']} clients "
              f"({report['searches_during_upload']} while the upload indexed): "
              f"p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, max {report['max_ms']} ms, "
              f"{report['throughput_qps']} searches/s, {report['errors']} errors")
        print(f"upload {up['file']}: HTTP {up['status']}, {up['pages']} pages in {up['seconds']} s "
              f"(first search after start: {report['warm_first_search_s']} s; "
              f"{report['cores']} cores)")
        for sample in report["error_samples"]:
            print(f"  error: {sample}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

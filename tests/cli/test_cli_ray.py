"""``retriever index --ray`` as a user runs it (a subprocess that starts its own local Ray
cluster, plugins found through entry points by the workers too): the JSON report, a
re-run that encodes nothing, a local search of the result, a bad file reported with the
exit code of a local run, and FAISS refused with exit code 2."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ray.data")
pytest.importorskip("lance")

from cli_subprocess import plugin_env, run_cli
from repo_paths import SAMPLES

from retriever.errors import ExitCode

FILES = [str(SAMPLES / n) for n in ("invoice.pdf", "slide.pdf")]


def _index(*extra: str) -> list[str]:
    return ["index", *FILES, "-e", "example/hashing", "--no-ocr", "--ray", "--json", *extra]


def _report(result) -> dict:  # noqa: ANN001 - a CompletedProcess
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


@pytest.mark.slow
def test_index_on_ray_then_search_locally(tmp_path):
    env = plugin_env(tmp_path)
    first = run_cli(env, *_index("--ray-encoders", "1"), timeout=300)
    assert first.returncode == 0, first.stderr.decode()[-3000:]
    report = _report(first)
    assert sorted(report["indexed"]) == sorted(FILES) and report["encoded_pages"] == 2
    stderr = first.stderr.decode()
    assert "Traceback" not in stderr and "Progress bars" not in stderr

    again = run_cli(env, *_index(), timeout=300)
    assert again.returncode == 0 and _report(again)["unchanged"] == FILES

    found = run_cli(env, "search", "IBAN bank transfer", "-k", "1", "--json")
    assert found.returncode == 0
    hit = json.loads(found.stdout.decode().strip().splitlines()[-1])
    assert hit["source"].endswith("invoice.pdf") and hit["regions"]

    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7 truncated")
    partial = run_cli(env, "index", str(bad), *FILES, "-e", "example/hashing", "--no-ocr",
                      "--ray", "--json", timeout=300)
    assert partial.returncode == ExitCode.PARTIAL
    [failure] = _report(partial)["failed"]
    assert failure["path"] == str(bad)
    assert "Traceback" not in partial.stderr.decode()


def test_ray_refuses_a_faiss_collection(tmp_path):
    env = plugin_env(tmp_path)
    result = run_cli(env, *_index("-c", "flat", "--indexer", "faiss"), timeout=300)
    assert result.returncode == ExitCode.USAGE, result.stderr.decode()[-2000:]
    assert "faiss" in result.stderr.decode().lower()
    assert "Traceback" not in result.stderr.decode()


@pytest.mark.slow
def test_serve_ray_serves_a_sharded_collection(tmp_path):
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    from cli_subprocess import cli
    from repo_paths import REPO

    env = plugin_env(tmp_path)
    made = run_cli(env, "index", *FILES, "-e", "example/hashing", "--no-ocr", "--workers", "0")
    assert made.returncode == 0, made.stderr.decode()[-2000:]
    split = run_cli(env, "collections", "shard", "default", "--shards", "2")
    assert split.returncode == 0, split.stderr.decode()[-2000:]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(cli("serve", "--ray", "--port", str(port), "--log-level",
                                  "warning"), cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-3000:]
                assert time.monotonic() < deadline, "serve --ray did not start"
                time.sleep(0.5)
        request = urllib.request.Request(
            f"{base}/search", method="POST", headers={"content-type": "application/json"},
            data=json.dumps({"collection": "default", "query": "IBAN bank transfer",
                             "k": 1, "mode": "vector"}).encode())
        with urllib.request.urlopen(request, timeout=120) as response:
            [hit] = json.loads(response.read())["hits"]
        assert hit["source"].endswith("invoice.pdf") and hit["regions"]
        with urllib.request.urlopen(f"{base}/collections/default", timeout=60) as response:
            info = json.loads(response.read())
        assert [s["name"] for s in info["shards"]] == ["default.shard-0-of-2",
                                                        "default.shard-1-of-2"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    assert server.returncode == 0, server.stderr.read().decode()[-3000:]
    assert "Traceback" not in server.stderr.read().decode()

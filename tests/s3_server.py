"""A moto S3 server on loopback for the object-storage tests (no network beyond 127.0.0.1).

``s3_server`` (session): moto in server mode, a subprocess on a free port. ``s3`` (per test):
the AWS_* environment pointed at it, a fresh bucket, and the ``example/hashing`` plugin.
Import both fixtures into a test module to use them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


_START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a moto S3 server (skipped where moto is not installed)."""
    pytest.importorskip("moto.server", reason="pip install 'moto[server]' (the dev extra)")
    pytest.importorskip("boto3")
    port = _free_port()
    work = tmp_path_factory.mktemp("moto")
    log = work / "server.log"
    # recording is off until a test starts it (``recorded_requests``)
    env = {**os.environ, "MOTO_ENABLE_RECORDING": "True",
           "MOTO_RECORDER_FILEPATH": str(work / "recording.jsonl")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=env)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + _START_TIMEOUT_S
    try:
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class S3:
    endpoint: str
    bucket: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/retriever"

    def client(self):  # noqa: ANN201 - a boto3 client
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    @contextmanager
    def recorded_requests(self) -> Iterator[list[dict]]:
        """The requests the server receives in the block (moto's recorder), as dicts with
        ``method``, ``url`` and ``headers``; filled in when the block ends."""
        def call(action: str) -> bytes:
            method = "GET" if action == "download-recording" else "POST"
            request = urllib.request.Request(f"{self.endpoint}/moto-api/recorder/{action}",
                                             method=method)
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read()

        found: list[dict] = []
        call("reset-recording")
        call("start-recording")
        try:
            yield found
        finally:
            call("stop-recording")
            found.extend(json.loads(line) for line in
                         call("download-recording").decode().splitlines() if line.strip())

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3:
    """AWS_* pointed at the moto server, a new bucket, and the example encoder plugin."""

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask for an instance role
    # no profile of the machine's user may leak in
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    server = S3(s3_server, f"b-{uuid.uuid4().hex[:12]}")
    server.client().create_bucket(Bucket=server.bucket)
    from example_plugin_host import register_example_plugin

    register_example_plugin()  # a plugin whose encoder needs no model
    return server

"""A real uvicorn on a free loopback port: searches go on, error-free, while an upload is
indexing into the same collection.

The upload's encoder waits inside ``encode_pages`` until every search has finished, so the
searches certainly run while the upload indexes; no timing is asserted.
"""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from live_server import live_server
from repo_paths import SAMPLES
from retriever import EncoderSpec, Retriever, hookimpl, plugin_host
from retriever_example_plugin import HashingEncoder

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

CLIENTS, SEARCHES = 8, 20
_gate = threading.Event()  # open: encoding goes on; closed: encode_pages waits
_inside = threading.Event()  # set when an encode_pages call is waiting at the gate


class GatedEncoder(HashingEncoder):
    def __init__(self, dim: int = 1024) -> None:
        super().__init__(dim)
        self.name = "gated/hashing"

    def encode_pages(self, pages):  # type: ignore[no-untyped-def]
        if not _gate.is_set():
            _inside.set()
            assert _gate.wait(timeout=300), "the test never opened the gate"
        return super().encode_pages(pages)


class _GatedPlugin:
    @hookimpl
    def register_encoders(self, register: Any) -> None:
        register(EncoderSpec(name="gated/hashing", factory=GatedEncoder,
                             description="hashing encoder that waits for the test"))


@pytest.fixture(autouse=True)
def gated_plugin():
    plugin_host.get_plugin_manager().register(_GatedPlugin(), name="gated")
    _gate.set()
    _inside.clear()
    yield
    _gate.set()


def test_searches_keep_working_while_an_upload_indexes(tmp_path: Path):
    from retriever.server import create_app

    home = tmp_path / "home"
    with Retriever("live", data_dir=home, encoder="gated/hashing") as r:
        assert r.index([SAMPLES / "invoice.pdf", SAMPLES / "annual-report.pdf"],
                       workers=0).ok
    upload_file = tmp_path / "slide.pdf"
    shutil.copy(SAMPLES / "slide.pdf", upload_file)
    app = create_app(home, encoder="gated/hashing", ocr=None)

    with live_server(app) as base, ThreadPoolExecutor(CLIENTS + 1) as pool:
        with httpx.Client(base_url=base, timeout=120) as warm:  # open the collection once
            assert warm.get("/healthz").json()["status"] == "ok"
            assert warm.post("/search", json={"query": "invoice", "collection": "live"}
                             ).status_code == 200
        _gate.clear()

        def upload() -> httpx.Response:
            with httpx.Client(base_url=base, timeout=300) as client, open(upload_file, "rb") as f:
                return client.post("/collections/live/documents",
                                   files=[("files", ("slide.pdf", f, "application/pdf"))])

        uploading = pool.submit(upload)
        assert _inside.wait(timeout=120), "the upload never reached the encoder"

        def searches(worker: int) -> list[str]:
            errors = []
            with httpx.Client(base_url=base, timeout=120) as client:
                for i in range(SEARCHES):
                    query = ("when is the invoice due", "kiln technician programme",
                             "net sales by region")[(worker + i) % 3]
                    try:
                        response = client.post("/search", json={"query": query,
                                                                "collection": "live", "k": 3})
                        if response.status_code != 200 or not response.json()["hits"]:
                            errors.append(f"{response.status_code}: {response.text[:200]}")
                    except httpx.HTTPError as exc:
                        errors.append(repr(exc))
            return errors

        results = list(pool.map(searches, range(CLIENTS)))
        assert not uploading.done()  # still held at the gate: the searches overlapped it
        _gate.set()
        uploaded = uploading.result(timeout=300)

        assert [e for errors in results for e in errors] == []
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["documents"][0]["status"] == "indexed"
        with httpx.Client(base_url=base, timeout=120) as client:
            hits = client.post("/search", json={"query": "slide", "collection": "live",
                                                "k": 5}).json()["hits"]
            assert uploaded.json()["documents"][0]["doc_id"] in {h["doc_id"] for h in hits}
            metrics = client.get("/metrics").text
        # every search counted: the warm-up, the load and the last one
        line = 'retriever_http_requests_total{method="POST",route="/search",status="200"}'
        assert f"{line} {float(CLIENTS * SEARCHES + 2)}" in metrics


def test_searches_keep_working_while_a_document_is_deleted_and_uploaded_again(tmp_path):
    """A delete between a search's ranking and its read of the pages is searched again
    by the server, not a 500."""
    from retriever.server import create_app

    home = tmp_path / "home"
    with Retriever("live", data_dir=home, encoder="gated/hashing") as r:
        assert r.index([SAMPLES / "invoice.pdf", SAMPLES / "annual-report.pdf"],
                       workers=0).ok
    slide = (SAMPLES / "slide.pdf").read_bytes()
    app = create_app(home, encoder="gated/hashing", ocr=None)
    stop = threading.Event()
    with live_server(app) as base, ThreadPoolExecutor(4) as pool:
        def searches(worker: int) -> list[str]:
            errors, done = [], 0
            with httpx.Client(base_url=base, timeout=120) as client:
                while not stop.is_set() or done < 5:
                    response = client.post("/search", json={
                        "query": "slide invoice report", "collection": "live", "k": 5})
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                    done += 1
            return errors

        running = [pool.submit(searches, w) for w in range(3)]
        with httpx.Client(base_url=base, timeout=120) as client:
            for _ in range(4):
                uploaded = client.post("/collections/live/documents", files=[
                    ("files", ("slide.pdf", slide, "application/pdf"))])
                assert uploaded.status_code == 201, uploaded.text
                doc_id = uploaded.json()["documents"][0]["doc_id"]
                deleted = client.delete(f"/collections/live/documents/{doc_id}")
                assert deleted.status_code == 200, deleted.text
        stop.set()
        assert [e for future in running for e in future.result(timeout=300)] == []

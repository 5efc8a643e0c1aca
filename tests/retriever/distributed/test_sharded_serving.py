"""``retriever serve --ray``: a collection split into two shards is served as one, by one
Ray actor per shard. Its hits (vector mode) are those of the unsharded collection served
as usual, its info sums the shards, its images come from the shard that holds the page,
and an upload and a delete go to the document's shard and are seen by the next search."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from example_plugin_host import register_example_plugin
from repo_paths import SAMPLES

from fastapi.testclient import TestClient

from retriever import Retriever
from retriever.distributed import shard_collection, shard_of
from retriever.server import create_app

pytestmark = pytest.mark.usefixtures("example_plugin")

QUERIES = ("IBAN bank transfer", "annual revenue growth", "kiln technician programme")
WATER = "no running water in the building during the boiler repair"  # the upload's
SECRET = b"test image ids"  # both apps sign alike, so their image ids compare equal


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    register_example_plugin()
    home = tmp_path_factory.mktemp("served-shards")
    docs = home.parent / f"{home.name}-sources"
    docs.mkdir()
    for name in ("annual-report.pdf", "invoice.pdf", "slide.pdf"):
        shutil.copy(SAMPLES / name, docs)
    revised = docs / "invoice-rev1.pdf"  # same pages, another content hash: shard 1
    revised.write_bytes((SAMPLES / "invoice.pdf").read_bytes() + b"\n% revision 1\n")
    with Retriever("docs", data_dir=home, encoder="example/hashing", ocr=None) as r:
        assert r.index([docs], workers=0).ok
    assert shard_collection("docs", 2, data_dir=home).documents == [3, 1]
    return home


def _search(client: TestClient, query: str) -> list[dict]:
    response = client.post("/search", json={"collection": "docs", "query": query, "k": 4,
                                            "mode": "vector"})
    assert response.status_code == 200, response.text
    return response.json()["hits"]


def _rounded(hits: list[dict]) -> list[dict]:
    # the shards' processes may sum a matmul in another order: the last bits move
    for hit in hits:
        hit["score"] = round(hit["score"], 5)
        for region in hit["regions"]:
            region["score"] = round(region["score"], 5)
    return hits


def test_sharded_collection_served_as_one(cluster, home, tmp_path):
    plain = create_app(home, image_secret=SECRET, ocr=None)
    served = create_app(home, image_secret=SECRET, ray=True,  # OCR for the scanned upload
                        ray_setup=register_example_plugin)
    with TestClient(plain) as unsharded, TestClient(served) as sharded:
        names = sharded.get("/collections").json()["collections"]
        assert {"docs", "docs.shard-0-of-2", "docs.shard-1-of-2"} <= set(names)
        for query in QUERIES:
            assert _rounded(_search(sharded, query)) == _rounded(_search(unsharded, query))

        info = sharded.get("/collections/docs").json()
        whole = unsharded.get("/collections/docs").json()
        assert (info["documents"], info["pages"]) == (whole["documents"], whole["pages"])
        assert [s["name"] for s in info["shards"]] == ["docs.shard-0-of-2", "docs.shard-1-of-2"]
        assert info["encoder"] == whole["encoder"] and "path" not in info

        top = _search(sharded, "IBAN bank transfer")[0]
        image = sharded.get(f"/images/{top['image_id']}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"

        upload = SAMPLES / "scanned-letter.png"
        with open(upload, "rb") as f:
            added = sharded.post("/collections/docs/documents",
                                 files=[("files", ("letter.png", f, "image/png"))])
        assert added.status_code == 201, added.text
        [document] = added.json()["documents"]
        shard = f"docs.shard-{shard_of(document['doc_id'], 2)}-of-2"
        with Retriever(shard, data_dir=home) as r:
            assert document["doc_id"] in r.documents()  # in its own shard
        assert sharded.get("/collections/docs").json()["documents"] == whole["documents"] + 1
        found = _search(sharded, WATER)
        assert document["doc_id"] in {h["doc_id"] for h in found}

        gone = sharded.delete(f"/collections/docs/documents/{document['doc_id']}")
        assert gone.status_code == 200, gone.text
        assert document["doc_id"] not in {h["doc_id"] for h in _search(sharded, WATER)}
        assert sharded.get("/collections/docs").json()["documents"] == whole["documents"]

"""The server's routes over a real collection (TestClient, the test plugin's encoder)."""

from __future__ import annotations

import io
import json

from PIL import Image

from repo_paths import SAMPLES
from retriever import Retriever

QUERY = "when is the invoice payment due by bank transfer"


def _upload(client, collection: str, *files: tuple[str, bytes]):
    return client.post(f"/collections/{collection}/documents",
                       files=[("files", (name, data, "application/octet-stream"))
                              for name, data in files])


def test_search_hits_are_the_cli_json_plus_image_ids(client, home):
    response = client.post("/search", json={"query": QUERY, "collection": "docs", "k": 3})
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    with Retriever("docs", data_dir=home) as r:
        expected = [h.to_dict() for h in r.search(QUERY, 3)]
    for hit in hits:
        assert hit.pop("image_id")
        for region in hit["regions"]:
            assert region.pop("image_id")
    assert hits == json.loads(json.dumps(expected))


def test_page_and_region_images_come_by_their_ids(client):
    hit = client.post("/search", json={"query": QUERY, "collection": "docs", "k": 1}).json()["hits"][0]
    page = client.get(f"/images/{hit['image_id']}")
    region = client.get(f"/images/{hit['regions'][0]['image_id']}")
    assert page.status_code == region.status_code == 200
    assert page.headers["content-type"] == "image/png"
    page_image, region_image = Image.open(io.BytesIO(page.content)), Image.open(
        io.BytesIO(region.content))
    assert region_image.width < page_image.width and region_image.height < page_image.height


def test_context_cites_regions_within_the_budget(client):
    response = client.post("/context", json={"query": QUERY, "collection": "docs",
                                             "budget": 60, "images": "base64"})
    assert response.status_code == 200, response.text
    data = response.json()
    assert 0 < data["tokens"] <= 60 and data["prompt"].startswith("invoice.pdf, page 1:")
    assert [c["number"] for c in data["citations"]] == list(range(1, len(data["citations"]) + 1))
    assert all(c["image_base64"] and c["image_id"] for c in data["citations"])
    # a client cannot name a tokenizer (it would be a path on the server)
    bad = client.post("/context", json={"query": QUERY, "collection": "docs",
                                        "tokenizer": "/etc"})
    assert bad.status_code == 422


def test_collections_list_and_info(client):
    assert client.get("/collections").json() == {"collections": ["docs"]}
    info = client.get("/collections/docs").json()
    assert (info["documents"], info["pages"], info["encoder"]["name"]) == (2, 4, "example/hashing")
    assert "path" not in info
    assert client.get("/collections/nope").status_code == 404


def test_upload_indexes_into_a_new_collection_then_delete_removes_it(client, home):
    data = (SAMPLES / "slide.pdf").read_bytes()
    first = _upload(client, "fresh", ("slide.pdf", data))
    assert first.status_code == 201, first.text
    body = first.json()
    [doc] = body["documents"]
    assert doc["status"] == "indexed" and body["pages"] == 1 and body["failed"] == []
    assert (home / "uploads" / "fresh" / doc["doc_id"] / "slide.pdf").read_bytes() == data
    again = _upload(client, "fresh", ("slide.pdf", data)).json()
    assert again["documents"][0]["status"] == "unchanged"
    hits = client.post("/search", json={"query": "slide", "collection": "fresh"}).json()["hits"]
    assert {h["doc_id"] for h in hits} == {doc["doc_id"]}

    gone = client.delete(f"/collections/fresh/documents/{doc['doc_id']}")
    assert gone.status_code == 200 and gone.json()["pages"] == 1
    assert not (home / "uploads" / "fresh" / doc["doc_id"]).exists()
    assert client.delete(f"/collections/fresh/documents/{doc['doc_id']}").status_code == 404
    assert client.post("/search", json={"query": "slide", "collection": "fresh"}).json() == {
        "hits": []}


def test_bad_uploads_are_reported_like_the_cli_does(client, home):
    corrupt = _upload(client, "docs", ("broken.pdf", b"%PDF-1.4 this is not a pdf"))
    assert corrupt.status_code == 422
    body = corrupt.json()
    [failure] = body["failed"]
    assert failure["filename"] == "broken.pdf" and failure["reason"] == "corrupt"
    assert body["error"] == failure["error"] and body["error"].startswith("broken.pdf: corrupt")
    assert str(home) not in corrupt.text  # the server's paths stay on the server
    text = _upload(client, "docs", ("notes.txt", b"hello"))
    assert text.status_code == 422 and text.json()["error"] == "notes.txt: unsupported (file type .txt)"
    # one good file and one bad one: 201, the bad one listed
    mixed = _upload(client, "docs", ("slide.pdf", (SAMPLES / "slide.pdf").read_bytes()),
                    ("empty.pdf", b""))
    assert mixed.status_code == 201
    assert [f["reason"] for f in mixed.json()["failed"]] == ["empty"]
    assert [d["filename"] for d in mixed.json()["documents"]] == ["slide.pdf"]
    # bad files are not kept
    stored = sorted(p.name for p in (home / "uploads" / "docs").rglob("*") if p.is_file())
    assert stored == ["slide.pdf"]


def test_bad_requests(client):
    assert client.post("/search", json={"query": "", "collection": "docs"}).status_code == 422
    assert client.post("/search", json={"query": "x", "collection": "docs",
                                        "k": 0}).status_code == 422
    assert client.post("/search", json={"query": "   ", "collection": "docs"}).status_code == 400
    assert client.post("/search", json={"query": "x", "collection": "nope"}).status_code == 404


def test_healthz_and_metrics(client):
    assert client.get("/healthz").json()["status"] == "ok"
    client.post("/search", json={"query": QUERY, "collection": "docs"})
    client.get("/collections/nope")
    text = client.get("/metrics").text
    assert 'retriever_http_requests_total{method="POST",route="/search",status="200"} 1.0' in text
    assert 'route="/collections/{name}",status="404"' in text  # templates, not raw paths
    assert "retriever_http_request_duration_seconds_bucket" in text


def test_one_retriever_and_one_encoder_per_collection(client):
    state = client.app.state.retriever
    for query in ("invoice", "annual report", "bank transfer"):
        assert client.post("/search", json={"query": query, "collection": "docs"}).status_code == 200
    handle = state.collections.get("docs")
    encoder = handle.retriever.encoder
    client.post("/context", json={"query": "invoice", "collection": "docs"})
    assert state.collections.get("docs") is handle and handle.retriever.encoder is encoder
    # names that are not collections are not kept open
    client.post("/search", json={"query": "x", "collection": "nope"})
    assert set(state.collections._handles) == {"docs"}


def test_an_upload_while_another_writer_holds_the_collection_is_409(client, home):
    from retriever.locking import writer_lock

    data = (SAMPLES / "slide.pdf").read_bytes()
    with writer_lock(home, "docs", "index"):  # as a `retriever index` run would
        busy = _upload(client, "docs", ("slide.pdf", data))
        # searches never take the lock
        assert client.post("/search", json={"query": QUERY, "collection": "docs"}).status_code == 200
    assert busy.status_code == 409 and "is being indexed" in busy.json()["error"]
    assert not any(p.is_file() for p in (home / "uploads").rglob("*.pdf"))
    assert _upload(client, "docs", ("slide.pdf", data)).status_code == 201

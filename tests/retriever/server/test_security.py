"""The server never reads a file a client names, needs its key, caps uploads, and
refuses to listen beyond loopback without a key."""

from __future__ import annotations

import re
import shutil

import pytest

from cli.main import main
from repo_paths import SAMPLES
from retriever.server.auth import is_loopback

KEY = "test-key-0123456789"


SECRET = "TOPSECRET-4f1c9a"
QUERY = "invoice payment bank transfer"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "outside" / "secret.txt"
    path.parent.mkdir()
    path.write_text(f"{SECRET}\n")
    return path


def _upload(client, name: str, data: bytes, collection: str = "docs"):
    return client.post(f"/collections/{collection}/documents",
                       files=[("files", (name, data, "application/pdf"))])


def _no_secret(response) -> None:
    assert SECRET not in response.text and SECRET.encode() not in response.content


@pytest.mark.parametrize("method,path", [
    ("GET", "/collections/..%2f..%2fetc%2fpasswd"),
    ("GET", "/collections/%2e%2e"),
    ("GET", "/collections/%2e%2e%2f%2e%2e"),
    ("GET", "/collections/.hidden"),
    ("DELETE", "/collections/%2e%2e/documents/4c6f702813bdc6e89a6f"),
    ("DELETE", "/collections/docs/documents/..%2f..%2fetc%2fpasswd"),
    ("DELETE", "/collections/docs/documents/%2e%2e"),
    ("DELETE", "/collections/docs/documents/%2Fetc%2Fpasswd"),
    ("DELETE", "/collections/docs/documents/0000000000000000dead"),
    ("GET", "/images/..%2F..%2Fetc%2Fpasswd"),
    ("GET", "/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
    ("GET", "/images//etc/passwd"),
    ("GET", "/images/%2Fetc%2Fpasswd"),
    ("GET", "/images/not-an-id"),
    ("GET", "/images/eyJjIjoiZG9jcyJ9.AAAAAAAAAAAAAAAAAAAAAA"),
])
def test_traversal_and_unknown_ids_are_404(client, method, path, secret):
    response = client.request(method, path)
    assert response.status_code == 404, (path, response.status_code, response.text)
    _no_secret(response)
    assert "passwd" not in response.text or "no collection" in response.text


def test_a_forged_or_altered_image_id_is_404(client):
    hit = client.post("/search", json={"query": QUERY, "collection": "docs"}).json()["hits"][0]
    payload, tag = hit["image_id"].split(".")
    flipped = ("A" if tag[0] != "A" else "B") + tag[1:]
    assert client.get(f"/images/{payload}.{flipped}").status_code == 404
    # a valid signature for another server: this one's secret differs
    from retriever.server.ids import ImageIds

    other = ImageIds(b"another server's secret").make("docs", hit["doc_id"], 1)
    assert client.get(f"/images/{other}").status_code == 404
    # signed by this server, but for a page that does not exist
    ids = client.app.state.retriever.ids
    assert client.get(f"/images/{ids.make('docs', hit['doc_id'], 99)}").status_code == 404
    assert client.get(f"/images/{ids.make('docs', '0' * 20, 1)}").status_code == 404
    assert client.get(f"/images/{ids.make('..', hit['doc_id'], 1)}").status_code == 404


def test_an_upload_replaced_by_a_link_out_of_the_data_dir_is_not_read(client, home, secret):
    data = (SAMPLES / "slide.pdf").read_bytes()
    doc = _upload(client, "slide.pdf", data).json()["documents"][0]
    stored = home / "uploads" / "docs" / doc["doc_id"] / "slide.pdf"
    hit = next(h for h in client.post("/search", json={
        "query": "slide", "collection": "docs", "k": 5}).json()["hits"]
        if h["doc_id"] == doc["doc_id"])
    assert client.get(f"/images/{hit['image_id']}").status_code == 200
    # the same bytes outside: the hash matches, but the link leads out of DATA_DIR/uploads
    outside_copy = secret.parent / "slide.pdf"
    shutil.copy(SAMPLES / "slide.pdf", outside_copy)
    stored.unlink()
    stored.symlink_to(outside_copy)
    response = client.get(f"/images/{hit['image_id']}")
    assert response.status_code == 404
    stored.unlink()
    stored.symlink_to(secret)
    for response in (client.get(f"/images/{hit['image_id']}"),
                     client.get(f"/images/{hit['regions'][0]['image_id']}"),
                     client.post("/context", json={"query": "slide", "collection": "docs",
                                                   "images": "base64"})):
        assert response.status_code in (200, 404)
        _no_secret(response)


def test_an_upload_never_writes_through_a_planted_link(client, home, secret):
    from retriever.ingest import content_hash

    doc_id = content_hash(SAMPLES / "slide.pdf")
    folder = home / "uploads" / "docs" / doc_id
    folder.mkdir(parents=True)
    (folder / "slide.pdf").symlink_to(secret)  # where the upload will be stored
    response = _upload(client, "slide.pdf", (SAMPLES / "slide.pdf").read_bytes())
    assert response.status_code == 201, response.text
    assert secret.read_text() == f"{SECRET}\n"
    assert not (folder / "slide.pdf").is_symlink()
    # a linked directory on the way is refused, and nothing lands outside
    shutil.rmtree(folder)
    elsewhere = secret.parent / "linked"
    elsewhere.mkdir()
    folder.symlink_to(elsewhere, target_is_directory=True)
    response = _upload(client, "slide.pdf", (SAMPLES / "slide.pdf").read_bytes())
    assert response.status_code >= 400 and list(elsewhere.iterdir()) == []


def test_upload_names_cannot_climb_out(client, home):
    data = (SAMPLES / "slide.pdf").read_bytes()
    for name in ("../../../evil.pdf", "/etc/evil.pdf", "..\\..\\evil.pdf", "%2e%2e/evil.pdf"):
        response = _upload(client, name, data)
        assert response.status_code == 201, response.text
    uploads = (home / "uploads").resolve()
    for path in home.parent.rglob("*evil*"):
        assert path.resolve().is_relative_to(uploads), path
    names = {p.name for p in uploads.rglob("*evil*")}
    assert names and all(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", n) for n in names)


def test_every_route_but_healthz_needs_the_key(home, make_client):
    client = make_client(home, api_key=KEY)
    assert client.get("/healthz").status_code == 200
    hit_route = ("POST", "/search", {"query": QUERY, "collection": "docs"})
    routes = [hit_route, ("POST", "/context", {"query": QUERY, "collection": "docs"}),
              ("GET", "/collections", None), ("GET", "/collections/docs", None),
              ("GET", "/metrics", None), ("GET", "/openapi.json", None),
              ("GET", "/images/x.y", None),
              ("DELETE", "/collections/docs/documents/4c6f702813bdc6e89a6f", None)]
    for method, path, body in routes:
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"},
                        {"Authorization": f"Basic {KEY}"}, {"X-API-Key": KEY[:-1]}):
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers)
    upload = client.post("/collections/docs/documents",
                         files=[("files", ("slide.pdf", b"%PDF", "application/pdf"))])
    assert upload.status_code == 401
    assert not (home / "uploads").exists()  # refused before anything was stored
    for headers in ({"X-API-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        assert client.post("/search", json=hit_route[2], headers=headers).status_code == 200
        assert client.get("/openapi.json", headers=headers).status_code == 200


def test_uploads_over_the_cap_are_413_and_leave_nothing(home, make_client):
    client = make_client(home, max_upload_bytes=64 * 1024)
    big = (SAMPLES / "scanned-letter.png").read_bytes()  # 230 kB
    assert len(big) > 64 * 1024
    response = client.post("/collections/docs/documents",
                           files=[("files", ("letter.png", big, "image/png"))])
    assert response.status_code == 413
    assert "limit" in response.json()["error"] or "limit" in response.text

    # no Content-Length (chunked): counted as it arrives
    boundary = "testboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"letter.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + big + (
            f"\r\n--{boundary}--\r\n").encode()

    def chunks():
        for start in range(0, len(body), 16 * 1024):
            yield body[start:start + 16 * 1024]

    response = client.post("/collections/docs/documents", content=chunks(),
                           headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413
    stored = [p for p in (home / "uploads").rglob("*") if p.is_file()] if (
        home / "uploads").exists() else []
    assert stored == []
    small = client.post("/collections/docs/documents", files=[(
        "files", ("slide.pdf", (SAMPLES / "slide.pdf").read_bytes(), "application/pdf"))])
    assert small.status_code == 201


@pytest.mark.parametrize("host,loopback", [
    ("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.com", False)])
def test_loopback_is_told_apart(host, loopback):
    assert is_loopback(host) is loopback


def test_serving_beyond_loopback_without_a_key_exits_2(capsys, monkeypatch, tmp_path):
    assert main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "refusing to serve on 0.0.0.0 without an API key" in err and "--api-key-env" in err
    monkeypatch.delenv("RETRIEVER_TEST_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--api-key-env", "RETRIEVER_TEST_KEY",
                 "--data-dir", str(tmp_path)]) == 2
    assert "RETRIEVER_TEST_KEY is not set" in capsys.readouterr().err


def test_the_openapi_document_is_valid_and_declares_the_hit_schema(client):
    validator = pytest.importorskip("openapi_spec_validator")
    spec = client.get("/openapi.json").json()
    validator.validate(spec)
    schemas = spec["components"]["schemas"]
    assert {"rank", "score", "doc_id", "source", "page", "page_width", "page_height",
            "regions"} <= set(schemas["Hit"]["properties"])
    assert {"bbox", "text", "score"} <= set(schemas["Region"]["properties"])
    search = spec["paths"]["/search"]["post"]["responses"]["200"]["content"]["application/json"]
    assert search["schema"]["$ref"].endswith("/SearchResponse")
    assert "/collections/{name}/documents" in spec["paths"] and "/healthz" in spec["paths"]

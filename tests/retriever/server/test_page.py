"""The search page (``GET /``) through TestClient: the form, results drawn with the report's
boxes, page images by opaque id, escaping, HTML errors and the API key."""

from __future__ import annotations

import io
import re

from PIL import Image

from html_tree import parse
from repo_paths import SAMPLES
from report_docs import SCRIPT, hostile_pdf
from retriever import Retriever
from retriever.server.auth import SESSION_COOKIE

QUERY = "when is the invoice payment due by bank transfer"
KEY = "page-test-key-0123456789abcdef"


def _boxes(root):
    return root.find_all("a", cls="box")


def test_the_form_lists_the_collections_and_needs_no_script(home, make_client):
    with Retriever("slides", data_dir=home, encoder="example/hashing") as r:
        assert r.index([SAMPLES / "invoice.pdf"], workers=0).ok
    client = make_client(home)
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]  # none allowed
    root, tags = parse(response.text)
    assert "script" not in tags
    (form,) = root.find_all("form")
    assert form.attrs["method"] == "get"
    options = [o.attrs["value"] for o in root.find_all("option")]
    assert options == Retriever.list_collections(home) and {"docs", "slides"} <= set(options)
    # every control has its label, so a screen reader and the keyboard find them
    ids = {n.attrs["id"] for n in root.iter() if n.tag in ("input", "select")}
    labels = {n.attrs["for"] for n in root.find_all("label")}
    assert ids == labels == {"q", "collection", "k"}
    assert not root.find_all("article")  # no query: just the form


def test_results_have_one_box_per_region_and_images_by_opaque_id(client, home):
    response = client.get("/", params={"q": QUERY, "collection": "docs", "k": "2"})
    assert response.status_code == 200, response.text
    root, tags = parse(response.text)
    assert "script" not in tags
    with Retriever("docs", data_dir=home) as r:
        expected = r.search(QUERY, 2, max_regions=5)
    articles = root.find_all("article", cls="hit")
    assert len(articles) == len(expected) == 2
    for article, hit in zip(articles, expected):
        assert article.attrs["tabindex"] == "0"  # hits are reachable by keyboard
        boxes = _boxes(article)
        assert len(boxes) == len(hit.regions) > 0
        for box, region in zip(boxes, hit.regions):
            bbox = tuple(float(v) for v in box.attrs["data-region-bbox"].split(","))
            assert bbox == tuple(round(v, 6) for v in region.bbox)
            assert abs(float(box.attrs["data-region-score"]) - region.score) < 1e-6
            x0, _, x1, _ = region.bbox
            style = dict(p.split(":") for p in box.attrs["style"].split(";"))
            assert abs(float(style["left"].rstrip("%")) - x0 * 100) < 1e-3
            assert abs(float(style["width"].rstrip("%")) - (x1 - x0) * 100) < 1e-3
        texts = [p.text for p in article.find_all("p", cls="text")]
        assert texts == [r.text for r in hit.regions]
        (img,) = article.find_all("img", cls="page-image")
        src = img.attrs["src"]
        assert re.fullmatch(r"images/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", src), src
        assert str(home) not in response.text and hit.source not in response.text
        image = client.get(f"/{src}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).size[0] > 100


def test_the_query_and_document_text_are_escaped(client):
    upload = client.post("/collections/docs/documents", files=[
        ("files", ("reminder.pdf", hostile_pdf_bytes(), "application/pdf"))])
    assert upload.status_code == 201, upload.text
    query = f'payment due within 14 days "><img src=x onerror=alert(1)> {SCRIPT}'
    response = client.get("/", params={"q": query, "collection": "docs", "k": "5"})
    assert response.status_code == 200
    root, tags = parse(response.text)
    assert "script" not in tags
    assert [t for t in tags if t == "img"] == ["img"] * len(root.find_all("img", cls="page-image"))
    assert SCRIPT not in response.text and "&lt;script&gt;" in response.text
    assert root.find_all("input", None)[0].attrs["value"] == query  # echoed as a value
    texts = [p.text for p in root.find_all("p", cls="text")]
    assert any(SCRIPT in t for t in texts), texts  # the region text, shown as text


def hostile_pdf_bytes() -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return hostile_pdf(Path(tmp) / "reminder.pdf").read_bytes()


def test_unknown_collection_bad_k_and_empty_query_are_html(client):
    missing = client.get("/", params={"q": QUERY, "collection": "nope<b>"})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    root, _ = parse(missing.text)
    (alert,) = [n for n in root.iter() if n.attrs.get("role") == "alert"]
    assert "nope<b>" in alert.text and "<b>" not in missing.text
    assert root.find_all("form")  # the form stays, to pick another
    bad = client.get("/", params={"q": QUERY, "collection": "docs", "k": "many"})
    assert bad.status_code == 400 and "whole number" in bad.text
    empty = client.get("/", params={"q": "   ", "collection": "docs"})
    assert empty.status_code == 200
    root, _ = parse(empty.text)
    assert root.find_all("form") and not root.find_all("article")
    assert not [n for n in root.iter() if n.attrs.get("role") == "alert"]


def test_a_failing_search_is_an_html_500_without_a_traceback(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /srv/data")

    monkeypatch.setattr(Retriever, "search", broken)
    response = client.get("/", params={"q": QUERY, "collection": "docs"})
    assert response.status_code == 500
    assert "the details are in the server" in response.text
    assert "Traceback" not in response.text and "secret internals" not in response.text


def test_the_page_and_its_images_need_the_key_when_one_is_set(home, make_client):
    client = make_client(home, api_key=KEY)
    params = {"q": QUERY, "collection": "docs", "k": "1"}
    refused = client.get("/", params=params)
    assert refused.status_code == 401
    root, _ = parse(refused.text)
    assert "Payment" not in refused.text and not root.find_all("article")
    (form,) = root.find_all("form")  # a sign-in form, the key in a POST body
    assert form.attrs["method"] == "post" and form.attrs["action"] == "session"
    for headers in ({"X-API-Key": "wrong"}, {"Authorization": f"Bearer {KEY[:-1]}"}):
        assert client.get("/", params=params, headers=headers).status_code == 401
    client.cookies.set(SESSION_COOKIE, KEY)  # the raw key is not the session
    assert client.get("/", params=params).status_code == 401
    client.cookies.clear()

    with_header = client.get("/", params=params, headers={"X-API-Key": KEY})
    assert with_header.status_code == 200 and KEY not in with_header.text
    src = parse(with_header.text)[0].find_all("img", cls="page-image")[0].attrs["src"]
    assert client.get(f"/{src}").status_code == 401  # an image needs it too

    wrong = client.post("/session", data={"key": "guess", **params}, follow_redirects=False)
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    signed = client.post("/session", data={"key": KEY, **params}, follow_redirects=False)
    assert signed.status_code == 303
    assert signed.headers["location"].startswith("./?") and KEY not in signed.headers["location"]
    cookie = signed.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert KEY not in cookie  # it holds an HMAC of the key, not the key
    page = client.get("/", params=params)  # the cookie jar now holds the session
    assert page.status_code == 200 and len(parse(page.text)[0].find_all("article")) == 1
    assert client.get(f"/{src}").status_code == 200
    # the cookie opens the page and its images only: the JSON API still needs the header
    assert client.post("/search", json={"query": QUERY, "collection": "docs"}).status_code == 401
    assert client.get("/collections").status_code == 401


def test_a_source_changed_since_indexing_gets_a_notice_not_boxes(home, tmp_path, make_client):
    import shutil

    source = tmp_path / "terms.pdf"
    shutil.copy(SAMPLES / "invoice.pdf", source)
    with Retriever("changing", data_dir=home, encoder="example/hashing") as r:
        assert r.index([source], workers=0).ok
    source.write_bytes(source.read_bytes() + b"\n% edited after indexing\n")
    client = make_client(home)
    response = client.get("/", params={"q": QUERY, "collection": "changing", "k": "1"})
    assert response.status_code == 200
    root, _ = parse(response.text)
    (article,) = root.find_all("article", cls="hit")
    assert not article.find_all("img") and not _boxes(article)
    (notice,) = article.find_all("p", cls="notice")
    assert "terms.pdf has changed since it was indexed" in notice.text
    assert str(tmp_path) not in response.text  # its name only, not the server's path
    assert article.find_all("p", cls="text")  # the indexed text is still there


def test_an_over_long_query_is_an_html_400(client):
    response = client.get("/", params={"q": "x" * 1001, "collection": "docs"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "longer than 1000 characters" in response.text

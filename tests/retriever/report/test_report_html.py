"""The HTML report as markup: boxes, data-region attributes, escaped text, notices.

Parsed with ``html.parser`` (no browser); ``test_report_browser.py`` checks the same report
as Chromium lays it out.
"""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from html_tree import parse
from report_docs import SCRIPT
from repo_paths import SAMPLES
from retriever.errors import UsageError
from retriever.grounding import PatchRelevance
from retriever.ingest import content_hash, open_document
from retriever.report import render_report
from retriever.report.heatmap import paint_heatmap
from retriever.types import Hit, RegionHit

INVOICE = SAMPLES / "invoice.pdf"
TERMS = (0.1, 0.69, 0.9, 0.76)  # the invoice's payment-terms paragraph
QUOTES = 'INVOICE" onmouseover="window.__pwned=1'  # text that would break out of an attribute


def _hit(rank: int, path: Path, regions: list[RegionHit], doc_id: str | None = None) -> Hit:
    return Hit(rank=rank, score=1.0 / rank, doc_id=doc_id or content_hash(path),
               source=str(path), page=1, page_width=1, page_height=1, regions=regions)


def _image(uri: str) -> Image.Image:
    head, data = uri.split(",", 1)
    assert head in ("data:image/png;base64", "data:image/jpeg;base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


@pytest.fixture()
def report(tmp_path):
    """Three hits: an intact source, one rewritten after indexing, one deleted."""
    changed, gone = tmp_path / "changed.pdf", tmp_path / "gone.pdf"
    shutil.copy(INVOICE, changed)
    shutil.copy(SAMPLES / "slide.pdf", gone)
    hits = [
        _hit(1, INVOICE, [RegionHit(TERMS, f"Terms & conditions {SCRIPT}", 0.91),
                          RegionHit((0.5, 0.1, 0.95, 0.2), QUOTES, 0.42, level="line")]),
        _hit(2, changed, [RegionHit(TERMS, "payment terms", 0.8)]),
        _hit(3, gone, [RegionHit((0.1, 0.1, 0.5, 0.3), "a slide", 0.5)]),
    ]
    shutil.copy(SAMPLES / "slide.pdf", changed)  # content changed after "indexing"
    gone.unlink()
    out = tmp_path / "out" / "report.html"
    result = render_report(hits, out, dpi=72, query=f"due {SCRIPT}?",
                           details={"collection": "<b>c</b>"})
    html = out.read_text(encoding="utf-8")
    root, tags = parse(html)
    return result, html, root, tags


def test_every_region_is_a_box_placed_in_percent_with_its_data(report):
    result, _, root, _ = report
    (first, second, third) = root.find_all("article", "hit")
    boxes = first.find_all("a", "box")
    assert [b.attrs["data-region"] for b in boxes] == ["1.1", "1.2"]
    assert float(boxes[0].attrs["data-region-score"]) == pytest.approx(0.91)
    bbox = [float(v) for v in boxes[0].attrs["data-region-bbox"].split(",")]
    assert bbox == pytest.approx(TERMS)
    style = dict(part.split(":") for part in boxes[0].attrs["style"].split(";"))
    assert {k: float(v.rstrip("%")) for k, v in style.items()} == pytest.approx(
        {"left": 10.0, "top": 69.0, "width": 80.0, "height": 7.0}, abs=1e-3)
    assert boxes[0].find_all("span", "label")[0].text == "1 · 0.910"
    assert boxes[0].attrs["href"] == "#hit-1-r1"  # focusable; leads to its text
    # the page image: embedded, at the DPI asked for, with alt text
    (img,) = first.find_all("img", "page-image")
    expected = open_document(INVOICE, dpi=72).page(1).image.size
    assert _image(img.attrs["src"]).size == expected
    assert (int(img.attrs["width"]), int(img.attrs["height"])) == expected
    assert img.attrs["alt"].startswith("Page 1 of invoice.pdf")
    assert first.attrs["tabindex"] == "0" and first.find_all("h2")
    assert result.path.name == "report.html"


def test_document_text_is_escaped_never_markup(report):
    _, html, root, tags = report
    assert "script" not in tags  # not one script element, not even ours
    assert SCRIPT not in html and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    texts = [p.text for p in root.find_all("p", "text")]
    assert texts[0] == f"Terms & conditions {SCRIPT}"  # shown as the very text it is
    assert SCRIPT in root.find_all("h1")[0].text  # the query too
    # in an attribute (the box's tooltip) quotes stay inside it
    second = root.find_all("a", "box")[1]
    assert second.attrs["title"] == QUOTES and "onmouseover" not in second.attrs
    assert "<b>c</b>" in root.find_all("dl", "details")[0].text and "b" not in tags


def test_changed_and_vanished_sources_get_a_notice_and_no_boxes(report):
    result, _, root, _ = report
    _, changed, gone = root.find_all("article", "hit")
    for article, words in ((changed, "has changed since it was indexed"), (gone, "is gone")):
        (notice,) = article.find_all("p", "notice")
        assert notice.attrs["data-notice"] == "source-changed" and words in notice.text
        assert not article.find_all("a", "box") and not article.find_all("img")
        assert article.find_all("p", "text")  # the indexed text is still listed
    assert len(result.notices) == 2
    assert "changed since it was indexed" in result.notices[0]
    assert "not-found" in result.notices[1]
    assert "source changed" in root.find_all("nav")[0].text


def test_a_moved_source_is_drawn_from_a_recorded_path_that_still_matches(tmp_path):
    copy = tmp_path / "copy.pdf"
    shutil.copy(INVOICE, copy)
    hit = _hit(1, tmp_path / "moved-away.pdf", [RegionHit(TERMS, "t", 0.5)],
               doc_id=content_hash(INVOICE))
    hit.paths = [hit.source, str(copy)]
    result = render_report([hit], tmp_path / "r.html", dpi=50)
    root, _ = parse((tmp_path / "r.html").read_text())
    assert result.notices == [] and root.find_all("a", "box")
    assert root.find_all("p", "path")[0].attrs["title"] == str(copy)


def test_heatmap_paints_local_vectors_relative_to_the_page():
    # a 2x2 grid of patches; the top-left one is the page's most relevant
    boxes = np.array([[0, 0, .5, .5], [.5, 0, 1, .5], [0, .5, .5, 1], [.5, .5, 1, 1],
                      [0, 0, 1, 1]], np.float32)
    relevance = np.array([0.9, 0.5, 0.1, 0.3, 5.0], np.float32)  # the last: a page vector
    local = np.array([True, True, True, True, False])
    overlay = paint_heatmap(PatchRelevance(boxes, relevance, local), (200, 100))
    assert overlay.mode == "RGBA" and overlay.width == 200 and overlay.height == 100
    alpha = np.asarray(overlay)[..., 3]  # (h, w)
    top_left, top_right, bottom_left = alpha[10, 10], alpha[10, 150], alpha[80, 10]
    assert top_left > top_right > 0  # the page vector's 5.0 did not flatten the scale
    assert bottom_left == 0  # below the page's median: left clear
    no_place = PatchRelevance(boxes[4:], relevance[4:], local[4:])
    assert paint_heatmap(no_place, (200, 100)) is None


def test_report_with_heatmap_overlays_it_or_says_why_not(tmp_path):
    grid = PatchRelevance(np.array([[0, 0, .5, .5], [.5, .5, 1, 1]], np.float32),
                          np.array([0.8, 0.2], np.float32), np.array([True, True]))
    page_only = PatchRelevance(np.array([[0, 0, 1, 1]], np.float32),
                               np.array([0.5], np.float32), np.array([False]))
    hits = [_hit(1, INVOICE, [RegionHit(TERMS, "t", 0.5)]),
            _hit(2, SAMPLES / "slide.pdf", [])]
    heat = {f"{hits[0].doc_id}:1": grid, f"{hits[1].doc_id}:1": page_only}
    render_report(hits, tmp_path / "h.html", dpi=50, heat=heat, heatmap=True)
    root, _ = parse((tmp_path / "h.html").read_text())
    first, second = root.find_all("article", "hit")
    (overlay,) = first.find_all("img", "heat")
    assert overlay.attrs["src"].startswith("data:image/png;base64,")
    assert overlay.attrs["alt"] == "" and overlay.attrs["aria-hidden"] == "true"
    assert not second.find_all("img", "heat")
    assert "No heatmap" in second.find_all("figcaption")[0].text


# -- through the SDK and the CLI, on a collection of the samples -----------------------

from example_plugin_host import register_example_plugin  # noqa: E402


@pytest.fixture()
def home(tmp_path):
    from retriever import Retriever

    register_example_plugin()
    with Retriever("r", data_dir=tmp_path, encoder="example/hashing") as r:
        r.index([INVOICE, SAMPLES / "annual-report.pdf"], workers=0)
    return tmp_path


def test_cli_search_writes_the_report_with_a_heatmap(home, tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["search", "payment is due within 30 days", "-c", "r",
                                      "--data-dir", str(home), "-k", "2", "--html", str(out),
                                      "--heatmap"])
    assert result.exit_code == 0, result.output
    assert f"report written to {out}" in result.stderr
    root, tags = parse(out.read_text(encoding="utf-8"))
    articles = root.find_all("article", "hit")
    assert len(articles) == 2 and "script" not in tags
    boxes = articles[0].find_all("a", "box")
    assert boxes and all(b.attrs["data-region-bbox"] for b in boxes)
    # the example encoder keeps one vector per text line, each boxed: a heatmap of lines
    assert articles[0].find_all("img", "heat")
    assert "example/hashing" in root.find_all("dl", "details")[0].text


def test_cli_heatmap_needs_html_and_sdk_heatmap_needs_the_query(home, tmp_path):
    from cli.main import main
    from retriever import Retriever

    base = ["search", "payment", "-c", "r", "--data-dir", str(home)]
    assert main([*base, "--heatmap"]) == 2  # a usage error
    with Retriever("r", data_dir=home) as r:
        hits = r.search("payment terms", k=1)
        with pytest.raises(UsageError, match="query"):
            r.render_html(hits, tmp_path / "x.html", heatmap=True)
        assert r.render_html(hits, tmp_path / "x.html") == []
    assert (tmp_path / "x.html").stat().st_size > 10_000


@pytest.mark.slow
def test_patch_encoder_heatmap_comes_from_the_stored_patch_vectors(tmp_path):
    """A ViT with patches: the overlay is the grounding code's per-patch relevance, and
    without patches (one whole-page vector) the report says there is no heatmap."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("open_clip")
    from tiny_vit import build_tiny_clip

    from retriever import Retriever

    model = build_tiny_clip(tmp_path / "clip")
    for name, patches in (("patches", True), ("single", False)):
        options = {"model": str(model), "patches": patches}
        with Retriever(name, data_dir=tmp_path, encoder="clip/vit-b-16",
                       encoder_options=options) as r:
            r.index([INVOICE], workers=0)
            hits = r.search("when is the payment due?", k=1, mode="vector")
            out = tmp_path / f"{name}.html"
            assert r.render_html(hits, out, heatmap=True, query="when is the payment due?") == []
        (article,) = parse(out.read_text(encoding="utf-8"))[0].find_all("article", "hit")
        overlays = article.find_all("img", "heat")
        if patches:
            overlay = _image(overlays[0].attrs["src"])
            page = _image(article.find_all("img", "page-image")[0].attrs["src"])
            assert overlay.mode == "RGBA"
            assert abs(overlay.width / overlay.height - page.width / page.height) < 0.02
            assert np.asarray(overlay)[..., 3].max() > 0  # something is shaded
        else:
            assert not overlays and "No heatmap" in article.text


def test_a_search_without_hits_still_makes_a_report(tmp_path):
    result = render_report([], tmp_path / "none.html", dpi=100, query="nothing like this")
    root, _ = parse(result.path.read_text(encoding="utf-8"))
    assert not root.find_all("article") and "No hits." in root.find_all("main")[0].text

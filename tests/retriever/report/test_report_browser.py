"""The HTML report in a real browser: headless Debian Chromium through chromium-driver.

The report comes from a real collection: the sample invoice and annual report, a PDF whose
text holds a ``<script>`` element and a memo rewritten after indexing, indexed with the
default encoder and searched like a user would. Chromium then lays it out: every drawn box
must sit on its region's bbox scaled to the image as rendered, the markup in the text must
show as text and never run, and the changed memo must say so instead of drawing boxes.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

import browser
from isolation import isolated_build
from report_docs import SCRIPT, hostile_pdf, memo_pdf, write_pdf
from repo_paths import SAMPLES

QUERY = "When is the payment due?"
TOLERANCE_PX = 1.5

#: per drawn box: its bbox and rectangle, and the rectangle of the page image it is on
_GEOMETRY_JS = """
const rect = e => { const r = e.getBoundingClientRect();
                    return {x: r.left, y: r.top, w: r.width, h: r.height}; };
return [...document.querySelectorAll('article.hit')].map(a => {
  const img = a.querySelector('img.page-image');
  return {source: a.querySelector('.path').textContent,
          image: img && {rect: rect(img), natural: [img.naturalWidth, img.naturalHeight],
                         complete: img.complete},
          notice: a.querySelector('.notice') && a.querySelector('.notice').innerText,
          boxes: [...a.querySelectorAll('a.box')].map(b => ({
              bbox: b.dataset.regionBbox.split(',').map(Number), rect: rect(b),
              score: Number(b.dataset.regionScore), label: b.innerText}))};
});
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The report of one search over a default-encoder collection, as the CLI writes it."""
    from retriever import Retriever

    docs = tmp_path_factory.mktemp("docs")
    for name in ("invoice.pdf", "annual-report.pdf"):
        shutil.copy(SAMPLES / name, docs / name)
    hostile_pdf(docs / "reminder.pdf")
    memo = memo_pdf(docs / "memo.pdf")
    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("report") / "report.html"
    # module-wide, so the function-scoped conftest environment is not there yet
    with isolated_build(tmp_path_factory):
        with Retriever("report", data_dir=home) as r:
            r.index([docs], workers=0)
            hits = r.search(QUERY, k=4)
            found = {Path(h.source).name for h in hits}
            assert {"invoice.pdf", "reminder.pdf", "memo.pdf"} <= found, found
            write_pdf(memo, ["Rewritten after indexing: nothing about payment here."])
            notices = r.render_html(hits, out, query=QUERY)
    assert len(notices) == 1 and "memo.pdf" in notices[0]
    return out


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    browser.require("the report's browser tests")
    with browser.chromium(tmp_path_factory.mktemp("chromium-profile")) as d:
        yield d


@pytest.fixture()
def page(driver, report):
    driver.set_window_size(1280, 1000)
    driver.get(report.as_uri())
    return driver


def _check_boxes(hits: list[dict]) -> int:
    drawn = 0
    for hit in hits:
        image = hit["image"]
        if image is None:
            continue
        assert image["complete"] and image["natural"][0] > 0, hit["source"]
        img = image["rect"]
        for box in hit["boxes"]:
            x0, y0, x1, y1 = box["bbox"]
            want = {"x": img["x"] + x0 * img["w"], "y": img["y"] + y0 * img["h"],
                    "w": (x1 - x0) * img["w"], "h": (y1 - y0) * img["h"]}
            for key, value in want.items():
                assert abs(box["rect"][key] - value) <= TOLERANCE_PX, (hit["source"], key,
                                                                        box, img)
            assert f"{box['score']:.3f}" in box["label"]  # labelled with its score
            drawn += 1
    return drawn


def test_every_box_sits_on_its_bbox_scaled_to_the_rendered_image(page):
    hits = page.execute_script(_GEOMETRY_JS)
    assert len(hits) == 4
    drawn = _check_boxes(hits)
    assert drawn >= 3
    shown = [h["image"] for h in hits if h["image"]]
    # the image is laid out smaller than its pixels: the boxes scale with it, not with them
    assert all(s["rect"]["w"] < s["natural"][0] for s in shown)
    # ...and at another window width they follow the image again
    page.set_window_size(760, 1000)
    narrow = page.execute_script(_GEOMETRY_JS)
    assert _check_boxes(narrow) == drawn
    assert narrow[0]["image"]["rect"]["w"] < shown[0]["rect"]["w"]


def test_screenshot_is_a_png_of_the_viewport(page, tmp_path):
    path = tmp_path / "report.png"
    assert page.save_screenshot(str(path))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    inner = page.execute_script(
        "return [innerWidth * devicePixelRatio, innerHeight * devicePixelRatio]")
    assert (width, height) == (round(inner[0]), round(inner[1]))
    full = browser.full_page_png(page)
    size = page.execute_script("return [document.documentElement.scrollWidth, "
                               "document.documentElement.scrollHeight]")
    assert struct.unpack(">II", full[16:24]) == tuple(size)


def test_markup_in_document_text_is_shown_as_text_and_never_run(page):
    assert page.execute_script("return typeof window.__pwned") == "undefined"
    assert page.execute_script("return document.scripts.length") == 0
    from selenium.webdriver.common.by import By

    texts = [e for e in page.find_elements(By.CSS_SELECTOR, "p.text") if SCRIPT in e.text]
    assert texts, "the region with the <script> text is not in the report"
    assert all(e.is_displayed() for e in texts)


def test_a_source_changed_since_indexing_is_marked_and_not_drawn(page):
    hits = page.execute_script(_GEOMETRY_JS)
    (memo,) = [h for h in hits if h["source"].endswith("memo.pdf")]
    assert memo["image"] is None and memo["boxes"] == []
    assert "has changed since it was indexed" in memo["notice"]
    from selenium.webdriver.common.by import By

    notice = page.find_element(By.CSS_SELECTOR, "article.hit .notice")
    assert notice.is_displayed()


def test_hits_boxes_and_region_texts_are_reachable_by_keyboard(page):
    focusable = page.execute_script(
        "return ['article.hit', 'a.box', '.regions li'].map(s => "
        "[...document.querySelectorAll(s)].every(e => e.tabIndex === 0))")
    assert focusable == [True, True, True]
    assert page.execute_script("return document.querySelectorAll('h1, h2, h3').length") > 4
    # focusing a region's text lights up its box on the page (CSS :has, no script)
    outline = page.execute_script("""
        const li = document.querySelector('article.hit .regions li[data-n="2"]');
        const box = li.closest('article').querySelector('a.box[data-n="2"]');
        const before = getComputedStyle(box).outlineStyle;
        li.focus();
        return [before, getComputedStyle(box).outlineStyle];""")
    assert outline == ["none", "solid"]

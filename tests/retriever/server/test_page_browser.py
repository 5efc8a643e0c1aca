"""The search page in a real browser: uvicorn on loopback, headless Debian Chromium.

The collection holds the sample invoice and a PDF whose text carries a ``<script>``
element. Chromium opens ``/?q=...&collection=...`` as a user would: every box must sit on
its region's bbox scaled to the page image as laid out (the image fetched from the
server's ``/images/{id}`` route), the markup must show as text and never run, and with an
API key the sign-in form must lead to the same results.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

import browser
from live_server import live_server
from report_docs import SCRIPT, hostile_pdf
from repo_paths import SAMPLES
from retriever import Retriever

pytest.importorskip("uvicorn")

ENCODER = "example/hashing"
QUERY = "payment due within 14 days by transfer"
KEY = "browser-page-key-0123456789abcdef"
TOLERANCE_PX = 1.5

#: per hit: its page image's rectangle and natural size, and every box's bbox and rectangle
_GEOMETRY_JS = """
const rect = e => { const r = e.getBoundingClientRect();
                    return {x: r.left, y: r.top, w: r.width, h: r.height}; };
return [...document.querySelectorAll('article.hit')].map(a => {
  const img = a.querySelector('img.page-image');
  return {src: img.getAttribute('src'), rect: rect(img), complete: img.complete,
          natural: [img.naturalWidth, img.naturalHeight],
          boxes: [...a.querySelectorAll('a.box')].map(b => ({
              bbox: b.dataset.regionBbox.split(',').map(Number), rect: rect(b),
              score: Number(b.dataset.regionScore), label: b.innerText}))};
});
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    from example_plugin_host import register_example_plugin

    register_example_plugin()
    docs = tmp_path_factory.mktemp("page-docs")
    shutil.copy(SAMPLES / "invoice.pdf", docs / "invoice.pdf")
    hostile_pdf(docs / "reminder.pdf")
    home = tmp_path_factory.mktemp("page-home")
    with Retriever("docs", data_dir=home, encoder=ENCODER) as r:
        assert r.index([docs], workers=0).ok
    return home


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Iterator:
    browser.require("the search page's browser tests")
    with browser.chromium(tmp_path_factory.mktemp("chromium-profile")) as d:
        yield d


def _serve(data_dir: Path, **options):
    from retriever.server import create_app

    return live_server(create_app(data_dir, encoder=ENCODER, ocr=None, **options))


def _results_url(base: str) -> str:
    return f"{base}/?{urlencode({'q': QUERY, 'collection': 'docs', 'k': '3'})}"


def _wait_for_results(driver, url_part: str) -> list:
    """The hits of the page a form submission leads to, once it has loaded (a key press
    returns before the navigation it starts is done)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 60).until(
        lambda d: url_part in d.current_url
        and d.execute_script("return document.readyState") == "complete"
        and d.find_elements(By.CSS_SELECTOR, "article.hit"))
    return driver.find_elements(By.CSS_SELECTOR, "article.hit")


def _check_boxes(hits: list[dict]) -> int:
    drawn = 0
    for hit in hits:
        assert hit["src"].startswith("images/"), hit["src"]  # an id, never a path
        assert hit["complete"] and hit["natural"][0] > 0, hit["src"]  # the PNG arrived
        img = hit["rect"]
        for box in hit["boxes"]:
            x0, y0, x1, y1 = box["bbox"]
            want = {"x": img["x"] + x0 * img["w"], "y": img["y"] + y0 * img["h"],
                    "w": (x1 - x0) * img["w"], "h": (y1 - y0) * img["h"]}
            for key, value in want.items():
                assert abs(box["rect"][key] - value) <= TOLERANCE_PX, (key, box, img)
            assert f"{box['score']:.3f}" in box["label"]
            drawn += 1
    return drawn


def test_boxes_sit_on_their_bboxes_and_markup_never_runs(data_dir, driver, tmp_path):
    from selenium.webdriver.common.by import By

    with _serve(data_dir) as base:
        driver.set_window_size(1280, 1000)
        driver.get(_results_url(base))
        hits = driver.execute_script(_GEOMETRY_JS)
        assert len(hits) == 2  # both documents have a page
        drawn = _check_boxes(hits)
        assert drawn >= 4
        # laid out smaller than its pixels: the boxes scale with the image, not the PNG
        assert all(h["rect"]["w"] < h["natural"][0] for h in hits)
        driver.set_window_size(760, 1000)
        narrow = driver.execute_script(_GEOMETRY_JS)
        assert _check_boxes(narrow) == drawn
        assert narrow[0]["rect"]["w"] < hits[0]["rect"]["w"]
        driver.set_window_size(1280, 1000)

        shot = tmp_path / "search-page.png"
        assert driver.save_screenshot(str(shot))
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        assert struct.unpack(">II", data[16:24]) == (1280, driver.execute_script(
            "return innerHeight"))

        assert driver.execute_script("return typeof window.__pwned") == "undefined"
        assert driver.execute_script("return document.scripts.length") == 0
        texts = [e for e in driver.find_elements(By.CSS_SELECTOR, "p.text") if SCRIPT in e.text]
        assert texts and all(e.is_displayed() for e in texts)
        # the query is echoed into the box, as the value the form sends again
        assert driver.find_element(By.ID, "q").get_attribute("value") == QUERY


def test_the_form_works_by_keyboard_and_the_sign_in_leads_to_results(data_dir, driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with _serve(data_dir, api_key=KEY) as base:
        driver.delete_all_cookies()
        driver.get(f"{base}/?{urlencode({'q': QUERY, 'collection': 'docs'})}")
        assert not driver.find_elements(By.CSS_SELECTOR, "article.hit")
        key = driver.find_element(By.ID, "key")
        key.send_keys(KEY, Keys.ENTER)  # the sign-in form, submitted from the keyboard
        hits = _wait_for_results(driver, "collection=docs")
        assert KEY not in driver.current_url and KEY not in driver.page_source
        assert _check_boxes(driver.execute_script(_GEOMETRY_JS)) >= 1  # images by cookie
        assert all(h.get_attribute("tabindex") == "0" for h in hits)

        # a new search typed into the box and sent with Enter, no script involved
        box = driver.find_element(By.ID, "q")
        box.clear()
        box.send_keys("total due", Keys.ENTER)
        assert _wait_for_results(driver, "q=total+due")

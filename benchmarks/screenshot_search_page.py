"""Index the samples, serve them, and take a Chromium screenshot of the search page.

    python benchmarks/screenshot_search_page.py                 # -> docs/search-page.png
    python benchmarks/screenshot_search_page.py --query "What dividend is proposed?"

What it runs is what a user does (in a throwaway data directory):

    retriever index samples/invoice.pdf samples/annual-report.pdf
    retriever serve            # then open http://127.0.0.1:8765/?q=...&collection=...

The server is the real app on a free loopback port (uvicorn in a thread); the screenshot
is the top of the page (the form and the first hit) as headless Debian Chromium draws it,
through chromium-driver (``tests/browser.py``); no browser is fetched.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "samples" / "invoice.pdf", REPO / "samples" / "annual-report.pdf"]

#: the bottom of the first hit (or the form), in CSS pixels from the top of the document
_FIRST_HIT_BOTTOM_JS = """
const hit = document.querySelector('article.hit') || document.querySelector('header');
return Math.ceil(hit.getBoundingClientRect().bottom + scrollY + 16);
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="When is the payment due?")
    parser.add_argument("--k", type=int, default=2, help="pages on the page")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "search-page.png")
    parser.add_argument("--width", type=int, default=1280, help="browser width, CSS px")
    args = parser.parse_args(argv)

    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    import browser
    from live_server import live_server
    from retriever import Retriever
    from retriever.server import create_app

    why = browser.missing()
    if why:
        raise SystemExit(f"cannot take the screenshot: {why}")
    with tempfile.TemporaryDirectory(prefix="screenshot-search-page-") as tmp:
        work = Path(tmp)
        # built-in plugins only, and this user's model cache (the default encoder's ONNX
        # export is made once and reused)
        os.environ.setdefault("RETRIEVER_LOAD_PLUGINS", "")
        with Retriever("samples", data_dir=work / "home") as r:
            r.index(DOCS, workers=0)
        app = create_app(work / "home")
        query = urlencode({"q": args.query, "collection": "samples", "k": args.k})
        with live_server(app) as base, \
                browser.chromium(work / "chromium-profile", width=args.width) as driver:
            driver.get(f"{base}/?{query}")
            hits = driver.execute_script(
                "return [...document.querySelectorAll('article.hit')].map(a => "
                "[a.querySelector('h2').innerText, a.querySelectorAll('a.box').length, "
                "a.querySelector('img.page-image').naturalWidth])")
            bottom = int(driver.execute_script(_FIRST_HIT_BOTTOM_JS))
            clip = {"x": 0, "y": 0, "width": args.width, "height": bottom, "scale": 1}
            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True, "clip": clip})
    for title, boxes, width in hits:
        loaded = "image loaded" if width else "IMAGE MISSING"
        print(f"{' '.join(title.split())}: {boxes} boxes, {loaded}", file=sys.stderr)
    if not hits or not all(width for _, _, width in hits):
        raise SystemExit("the page has no hits or a page image did not load")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot {args.out} ({args.width}x{bottom})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

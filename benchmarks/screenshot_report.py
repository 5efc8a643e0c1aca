"""Index the samples, search them, write the HTML report and a Chromium screenshot of it.

    python benchmarks/screenshot_report.py                      # -> docs/report.png
    python benchmarks/screenshot_report.py --query "What dividend is proposed?" --k 2
    python benchmarks/screenshot_report.py --html /tmp/report.html --no-heatmap

What it runs is what a user types (in a throwaway data directory):

    retriever index samples/invoice.pdf samples/annual-report.pdf
    retriever search "When is the payment due?" -k 2 --html report.html --heatmap

The screenshot is the top of the report (the header and the first hit) as headless Debian
Chromium draws it, through chromium-driver (``tests/browser.py``); no browser is fetched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = [REPO / "samples" / "invoice.pdf", REPO / "samples" / "annual-report.pdf"]

#: the bottom of the first hit, in CSS pixels from the top of the document
_FIRST_HIT_BOTTOM_JS = """
const hit = document.querySelector('article.hit');
return Math.ceil((hit || document.body).getBoundingClientRect().bottom + scrollY + 16);
"""


def _screenshot(html: Path, out: Path, width: int, profile: Path) -> tuple[int, int]:
    import base64

    sys.path[:0] = [str(REPO / "tests")]
    import browser

    why = browser.missing()
    if why:
        raise SystemExit(f"cannot take the screenshot: {why}")
    with browser.chromium(profile, width=width, height=1000) as driver:
        driver.get(html.as_uri())
        bottom = int(driver.execute_script(_FIRST_HIT_BOTTOM_JS))
        clip = {"x": 0, "y": 0, "width": width, "height": bottom, "scale": 1}
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": clip})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))
    return width, bottom


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--query", default="When is the payment due?")
    parser.add_argument("--k", type=int, default=2, help="hits in the report")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "report.png")
    parser.add_argument("--html", type=Path, default=None,
                        help="keep the report here (default: a temporary file)")
    parser.add_argument("--heatmap", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--width", type=int, default=1280, help="browser width, CSS px")
    args = parser.parse_args(argv)

    sys.path[:0] = [str(REPO)]
    from retriever import Retriever

    with tempfile.TemporaryDirectory(prefix="screenshot-report-") as tmp:
        work = Path(tmp)
        # a throwaway collection, and the model cache of this user (an ONNX export of the
        # default encoder is made once and reused)
        os.environ.setdefault("RETRIEVER_LOAD_PLUGINS", "")
        with Retriever("samples", data_dir=work / "home") as r:
            r.index(DOCS, workers=0)
            hits = r.search(args.query, k=args.k)
            html = args.html or work / "report.html"
            for notice in r.render_html(hits, html, heatmap=args.heatmap, query=args.query):
                print(f"warning: {notice}", file=sys.stderr)
        for hit in hits:
            print(f"{hit.rank}. {Path(hit.source).name} p{hit.page} score {hit.score:.4f}: "
                  f"{len(hit.regions)} regions", file=sys.stderr)
        size = _screenshot(html, args.out, args.width, work / "chromium-profile")
    print(f"report {html if args.html else '(temporary)'}; screenshot {args.out} "
          f"({size[0]}x{size[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

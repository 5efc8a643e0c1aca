"""Headless Debian Chromium driven by Selenium through chromium-driver, for report tests.

No browser is ever downloaded: the binaries are the system's (``apt-get install chromium
chromium-driver``; ``.ci/setup dev`` does it). In CI a missing piece fails the test that
needs it, so a green run means the browser checks ran; elsewhere they are skipped with
the reason.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("RETRIEVER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (os.environ.get("RETRIEVER_CHROMEDRIVER") or shutil.which("chromedriver")
                or "/usr/bin/chromedriver")

#: the flags of a quiet, offline headless run: no GPU, no first-run or update traffic
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1")


def missing() -> str | None:
    """What is missing to drive Chromium here, or None when everything is in place."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if not os.access(CHROMEDRIVER, os.X_OK):
        return f"no chromedriver at {CHROMEDRIVER} (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package is not installed (pip install selenium)"
    return None


def require(what: str) -> None:
    """Fail (in CI, which installs the browser) or skip (elsewhere, with the reason) when
    Chromium cannot be driven here; ``what`` names the tests that need it."""
    import pytest

    why = missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} cannot run in CI: {why}")
    pytest.skip(f"no browser for {what}: {why}")


@contextmanager
def chromium(profile: Path, *, width: int = 1280, height: int = 1000) -> Iterator[Any]:
    """A Selenium WebDriver on headless Chromium with a fresh profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    # an explicit driver path: Selenium then never fetches a driver of its own
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


def full_page_png(driver: Any, *, max_height: int = 20_000) -> bytes:
    """A PNG of the whole document (not only the viewport), through DevTools."""
    size = driver.execute_script(
        "const e = document.documentElement;"
        "return [Math.ceil(e.scrollWidth), Math.ceil(e.scrollHeight)];")
    clip = {"x": 0, "y": 0, "width": size[0], "height": min(size[1], max_height), "scale": 1}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "clip": clip})
    return base64.b64decode(shot["data"])

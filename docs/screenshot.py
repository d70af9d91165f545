"""Take docs/playground.md's screenshot of the playground: ``make screenshot``.

Starts the origin on the bundled samples with the playground on, drives Debian's chromium
(Playwright, no browser download) through a banner crop, and writes docs/img/playground.webp.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.servers import start_gunicorn  # noqa: E402

OUT = REPO / "docs" / "img" / "playground.webp"


def main() -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    cache = tempfile.mkdtemp(prefix="screenshot-")
    server = start_gunicorn({"PROXY_PLAYGROUND": "1", "PROXY_CACHE_DIR": cache}, workers=1)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.click("button.original[data-id='astronaut.png']")
            page.fill("input[name=w]", "400")
            page.fill("input[name=h]", "160")
            page.select_option("select[name=fit]", "cover")
            page.select_option("select[name=gravity]", "attention")
            page.select_option("select[name=fmt]", "webp")
            page.wait_for_function(
                "document.getElementById('url').textContent.includes('gravity=attention')"
                " && document.getElementById('status').textContent === '200'"
                " && document.getElementById('result-info').textContent.startsWith('400×160')"
            )
            shot = page.screenshot()
            browser.close()
    finally:
        server.stop()
    image = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_COLOR)
    OUT.write_bytes(cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, 80])[1].tobytes())
    print(f"{OUT.relative_to(REPO)}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()

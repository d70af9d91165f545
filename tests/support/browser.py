"""Debian's chromium, driven by Playwright (``executable_path``: no browser download), for the
tests that need a real browser. .ci/run installs chromium; without it those tests are skipped."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_browser = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="chromium is not installed (.ci/run does)"
)
# axe-core's rules, injected into pages: tests/package.json, installed by make test where npm is
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
needs_axe = pytest.mark.skipif(
    not AXE.exists(), reason="axe-core is not installed (make test does, with npm)"
)
# Accept headers of image requests, as the browsers send them
ACCEPT = {
    "chromium": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
    "firefox": "image/avif,image/webp,*/*",
    "safari": (
        "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
        "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
    ),
    "old safari": "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5",
}


def launch() -> Iterator[Any]:
    """A headless chromium for a test module's fixture to yield."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def new_page(browser: Any, scale: float = 1, width: int = 1280) -> Any:
    """A page in a context of its own, collecting console errors and uncaught exceptions in ``errors``."""
    context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=scale)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def accessibility_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of ``impacts`` on the page as it is now: rule, help, and the nodes."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: {[node['target'] for node in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def raw_statuses(page: Any) -> list[int]:
    """The status of every network response from now on, as the network saw it: a revalidation
    is its 304, not the cached 200 that Playwright's own events report."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("Network.enable")
    statuses: list[int] = []
    devtools.on("Network.responseReceivedExtraInfo", lambda event: statuses.append(event["statusCode"]))
    return statuses

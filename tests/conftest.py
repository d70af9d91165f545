"""Fixtures shared by the test modules: apps built from the factory on temporary image roots and
cache dirs, images the tests encode themselves with OpenCV, a variant cache, the CLI in process,
an upstream HTTP server and a chromium. The helpers behind them are in tests/support/, shared
with bench/.

Every test is in one class, ``unit`` or ``integration`` (pyproject.toml's markers): a module or
a test that needs more than this process says ``integration`` (a test asking for ``upstream`` or
``chromium`` is one without saying so, ``chromium`` also making it ``browser``); every other test
is ``unit``, and is held to it while it runs: starting a process (a fork too) or connecting a
socket fails it, and SVGs are drawn in the test's own process (pipeline/drawing.py forks for each).
``slow`` is said by each test that takes seconds (any over ~5 s, a unit test over ~1 s), so that
``make test-fast`` (-m "unit and not slow") stays under a minute.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from proxy import create_app
from proxy.cache import VariantCache
from proxy.pipeline import drawing
from proxy.settings import Settings

from .support.browser import launch
from .support.cli import Cli, Ran, run_main
from .support.images import encode, photo, quadrants
from .support.upstreams import WebOriginals, web_originals

INTEGRATION_FIXTURES = {"upstream", "chromium"}  # what puts a test in integration by itself


@pytest.hookimpl(tryfirst=True)  # before -m selects by the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "chromium" in fixtures and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)
        integration = item.get_closest_marker("integration") is not None
        if not integration and (item.get_closest_marker("browser") or fixtures & INTEGRATION_FIXTURES):
            item.add_marker(pytest.mark.integration)
            integration = True
        if integration and item.get_closest_marker("unit") is not None:
            raise pytest.UsageError(f"{item.nodeid} is marked both unit and integration")
        if not integration:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _unit_tests_stay_in_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """A unit test that starts a process or connects a socket fails, saying what to mark it: the
    unit set stays in process, and fast, without anybody having to remember what a test does."""
    if request.node.get_closest_marker("unit") is None:
        yield
        return
    done: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: object, **kwargs: object) -> Any:
            done.append(what)
            raise OSError(f"a unit test {what}: mark it integration (tests/conftest.py)")

        return refused

    with pytest.MonkeyPatch.context() as patch:  # its own: a test's monkeypatch.undo() keeps it
        patch.setattr(drawing, "ISOLATED", False)  # SVGs draw in this process: a fork is a process
        patch.setattr(os, "fork", refuse("started a process"))
        patch.setattr(subprocess.Popen, "_execute_child", refuse("started a process"))
        patch.setattr(socket.socket, "connect", refuse("connected a socket"))
        patch.setattr(socket.socket, "connect_ex", refuse("connected a socket"))
        yield
    if done:  # the error may have been caught and turned into an answer: say it here regardless
        pytest.fail(f"{request.node.nodeid} {done[0]}: mark it integration (tests/conftest.py)")


@functools.cache
def _root_files() -> dict[str, bytes]:
    """The image root's files by path, encoded once (encoding them took ~0.1 s a test)."""
    alpha = np.zeros((200, 300, 4), np.uint8)
    alpha[..., :3] = (0, 0, 255)  # red
    alpha[:, 150:, 3] = 255  # left half transparent, right half opaque
    return {
        "photo.jpg": encode(photo(600, 400), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 92),
        "quadrants.png": encode(quadrants(300, 200), ".png"),
        "alpha.png": encode(alpha, ".png"),
        "nested/deep.webp": encode(photo(320, 240), ".webp"),
        "empty.jpg": b"",
        "text.jpg": b"this is not an image\n" * 10,
    }


@functools.cache
def _upstream_photo() -> bytes:
    return encode(photo(600, 400), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90)


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for name, data in _root_files().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def settings(image_root: Path, tmp_path: Path) -> Settings:
    return Settings(image_root=image_root, cache_dir=tmp_path / "cache", max_age=3600)


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as client:
        yield client


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli(*args, **env)``: ``python -m proxy *args`` in this process, with ``settings``' image
    root and cache dir and ``env`` as its PROXY_* variables (tests/support/cli.py)."""

    def cli(*args: str, **env: str) -> Ran:
        image_root, cache_dir = str(settings.image_root), str(settings.cache_dir)
        env = {"PROXY_IMAGE_ROOT": image_root, "PROXY_CACHE_DIR": cache_dir, **env}
        return run_main(args, env, monkeypatch, capsys)

    return cli


@pytest.fixture
def cache_size() -> int:
    """The bound of the ``cache`` fixture's cache: a module overrides this fixture for another."""
    return 16 << 20


@pytest.fixture
def cache(tmp_path: Path, cache_size: int) -> Iterator[VariantCache]:
    """A variant cache of its own: a lock waited for 2 s at most, a failed cache reopened at once."""
    cache = VariantCache(tmp_path / "cache", cache_size, lock_timeout=2, retry_after=0)
    yield cache
    cache.close()


@pytest.fixture
def upstream() -> Iterator[WebOriginals]:
    """A real HTTP server on loopback holding photo.jpg (tests/support/upstreams.py): a module
    adds files or faults by overriding this fixture and asking for it."""
    with web_originals() as server:
        server.files["photo.jpg"] = _upstream_photo()
        yield server


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless chromium for a module's browser tests (each marked ``needs_browser``)."""
    yield from launch()

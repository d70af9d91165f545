"""deploy/nginx.conf, run for real: Debian's nginx in front of a real gunicorn on loopback.

What holds on every way to the origin (the cache status, CORS, errors never stored, one entry
per format, purges and versioned URLs) is tested through nginx too, in tests/test_behaviour.py.
Here is what only nginx does: its cache lock, its own validity, stale copies while the origin
is down, consistent hashing over instances, the JPEG XL map line, connection reuse, a browser
through it, and how deploy/nginx_local.py runs it. The file is used as shipped, with only its
EDIT lines pointed at a scratch prefix (tests/support/fronts.py). .ci/run installs nginx; without it
the tests that run it are skipped, and say so.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import pytest

from deploy import nginx_local

from .support.browser import ACCEPT, needs_browser, new_page, raw_statuses
from .support.fronts import Way, available, start
from .support.images import decode, encode, photo
from .support.servers import REPO, Server, eventually, free_port, http_request, start_gunicorn

pytestmark = pytest.mark.integration

needs_nginx = pytest.mark.skipif(
    not available("nginx"), reason="nginx is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def way(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Way]:
    way = start("nginx", tmp_path_factory.mktemp("nginx"))
    try:
        (way.images / "big.png").write_bytes(
            encode(photo(2000, 1500, seed=8), ".png", cv2.IMWRITE_PNG_COMPRESSION, 1)
        )
        yield way
    finally:
        way.stop()


def test_a_miss_then_hits_served_by_nginx(way: Way) -> None:
    status, first, body = way.request("/image/rocket.jpg?w=200")
    assert status == 200 and first["x-cache"] == "MISS"
    for _ in range(3):
        status, headers, again = way.request("/image/rocket.jpg?w=200")
        assert status == 200 and headers["x-cache"] == "HIT" and again == body
        assert headers["etag"] == first["etag"] and headers["content-type"] == "image/jpeg"
    assert way.origin_requests("/image/rocket.jpg?w=200", 1) == 1
    assert decode(body).shape == (133, 200, 3)


def test_conditional_get_end_to_end(way: Way) -> None:
    _, headers, _ = way.request("/image/rocket.jpg?w=150")
    status, again, body = way.request("/image/rocket.jpg?w=150", If_None_Match=headers["etag"])
    assert status == 304 and body == b"" and again["etag"] == headers["etag"]
    status, _, body = way.request("/image/rocket.jpg?w=150", If_None_Match='"other"')
    assert status == 200 and decode(body).shape[1] == 150


def test_vary_accept_is_respected_with_two_jpeg_entries(way: Way) -> None:
    """A client taking WebP gets WebP; JPEG is kept twice, for a browser's image request and
    for a script (the map's $image_request), so that an error can answer each in its form."""
    url = "/image/chelsea.png?w=120&fmt=auto"
    for round_ in range(3):
        status, webp, body = way.request(url, Accept="image/webp,*/*")
        assert status == 200 and webp["content-type"] == "image/webp" and body[8:12] == b"WEBP"
        status, image, body = way.request(url, Accept=ACCEPT["old safari"])
        assert status == 200 and image["content-type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
        status, script, body = way.request(url, Accept="*/*")
        assert status == 200 and script["content-type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
        expected = "HIT" if round_ else "MISS"
        assert webp["x-cache"] == image["x-cache"] == script["x-cache"] == expected
        assert all("Accept" in headers["vary"] for headers in (webp, image, script))
    assert way.origin_requests(url, 3) == 3


def test_concurrent_identical_requests_reach_the_origin_once(way: Way) -> None:
    url = "/image/big.png?w=1999&fmt=webp"
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: way.request(url), range(10)))
    assert {status for status, _, _ in results} == {200}
    assert len({body for _, _, body in results}) == 1
    assert way.origin_requests(url, 1) == 1


def test_stale_variants_are_served_when_the_origin_is_down(tmp_path: Path) -> None:
    way = start("nginx", tmp_path, validity=1)
    try:
        status, headers, body = way.request("/image/rocket.jpg?w=90")
        assert status == 200 and headers["x-cache"] == "MISS"
        time.sleep(2.5)  # the cached copy is now stale (nginx counts whole seconds)
        workers = way.origin.workers()  # the origin dies: master first, so none is respawned
        way.origin.process.kill()
        way.origin.process.wait()
        for pid in workers:
            with suppress(ProcessLookupError):  # one may have seen its master go, and gone
                os.kill(pid, signal.SIGKILL)
        status, headers, again = way.request("/image/rocket.jpg?w=90")
        assert status == 200 and headers["x-cache"] == "STALE" and again == body
        status, headers, _ = way.request("/image/rocket.jpg?w=91")  # never cached: nothing to serve
        assert status == 502
    finally:
        way.stop()


@pytest.mark.slow
def test_the_fronts_validity_is_its_own_and_bounds_a_deleted_original(tmp_path: Path) -> None:
    """Browsers may be told max-age=0 or a day; nginx keeps its copy for its own validity, then
    revalidates (a 304 from the origin keeps it a hit), and a deleted original is a 404 after it."""
    way = start("nginx", tmp_path, {"PROXY_MAX_AGE": "0", "PROXY_STALE_WHILE_REVALIDATE": "0"}, validity=2)
    try:
        shutil.copy(way.images / "rocket.jpg", way.images / "gone.jpg")
        url = "/image/gone.jpg?w=80"
        status, first, body = way.request(url)
        assert status == 200 and first["x-cache"] == "MISS" and "max-age=0" in first["cache-control"]
        assert way.request(url)[1]["x-cache"] == "HIT"  # max-age=0 is for browsers only
        status, again, _ = way.request(url, If_None_Match=first["etag"])
        assert status == 304  # answered by nginx
        time.sleep(3)
        way.request(url)  # expired: revalidated, the origin answers 304 from a stat
        assert eventually(lambda: '" 304 ' in way.access_log.read_text(), bool, within=2)
        assert way.request(url)[1]["x-cache"] in ("HIT", "REVALIDATED")
        (way.images / "gone.jpg").unlink()
        time.sleep(3)  # past the validity
        statuses = [way.request(url)[0] for _ in range(3)]
        assert statuses == [404, 404, 404], statuses
    finally:
        way.stop()


# --- several instances behind one nginx: consistent hashing ------------------------------------


@contextmanager
def instances(base: Path) -> Iterator[tuple[list[Server], list[Path]]]:
    """Three single-worker instances on one image root, each with its own cache and access log."""
    images = base / "images"
    images.mkdir()
    shutil.copy(REPO / "samples" / "rocket.jpg", images / "rocket.jpg")
    servers: list[Server] = []
    logs = [base / f"access-{index}.log" for index in range(3)]
    try:
        for index, log in enumerate(logs):
            env = {
                "PROXY_IMAGE_ROOT": str(images),
                "PROXY_CACHE_DIR": str(base / f"cache-{index}"),
                "GUNICORN_ACCESSLOG": str(log),
            }
            servers.append(start_gunicorn(env, workers=1))
        yield servers, logs
    finally:
        for server in servers:
            server.stop()


@contextmanager
def nginx_over(servers: list[Server]) -> Iterator[int]:
    """A fresh nginx (empty cache) hashing over ``servers``, from a scratch prefix that is
    removed afterwards; yields the port it listens on."""
    prefix = nginx_local.scratch("nginx")
    port = free_port()
    process = None
    try:
        command = nginx_local.write_config(prefix, port, *(f"127.0.0.1:{server.port}" for server in servers))
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not eventually(lambda: _healthy(port), bool, within=15):
            log = prefix / "error.log"
            raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else ''}")
        yield port
    finally:
        if process is not None:
            process.send_signal(signal.SIGQUIT)
            process.wait(timeout=15)
        shutil.rmtree(prefix, ignore_errors=True)


def logged(logs: list[Path], urls: list[str], expected: int) -> list[list[int]]:
    """How many times each of ``urls`` is in each of ``logs``, once ``expected`` requests in all
    are (gunicorn logs a request just after answering it)."""

    def counts() -> list[list[int]]:
        texts = [log.read_text() for log in logs]
        return [[text.count(f"GET {url} ") for text in texts] for url in urls]

    return eventually(counts, lambda answer: sum(map(sum, answer)) >= expected, within=2)


def _healthy(port: int) -> bool:
    try:
        return http_request(port, "GET", "/healthz")[0] == 200
    except OSError:
        return False


@pytest.mark.slow
@needs_nginx
def test_instances_partition_the_variants_and_survive_one_down(tmp_path: Path) -> None:
    """Three instances, each with its own cache, behind one nginx hashing URLs consistently."""
    with instances(tmp_path) as (servers, logs), nginx_over(servers) as port:
        urls = [f"/image/rocket.jpg?w={width}" for width in range(100, 160)]
        for url in urls:
            assert http_request(port, "GET", url)[0] == 200
        counts = logged(logs, urls, len(urls))
        assert all(sorted(count) == [0, 0, 1] for count in counts)  # each variant on exactly one
        assert all(sum(count[index] for count in counts) > 5 for index in range(3))  # all share
        servers[2].stop()
        before = logs[2].read_text()
        for width in range(200, 240):  # new variants, some hashing to the stopped instance
            status, _, body = http_request(port, "GET", f"/image/rocket.jpg?w={width}")
            assert status == 200 and decode(body).shape[1] == width
        assert logs[2].read_text() == before


@needs_nginx
def test_adding_an_instance_moves_only_its_share(tmp_path: Path) -> None:
    urls = [f"/image/rocket.jpg?w={width}" for width in range(100, 160)]

    def route(servers: list[Server], logs: list[Path]) -> dict[str, int]:
        """Which instance each URL reaches through a fresh nginx (empty cache) over ``servers``."""
        before = logged(logs, urls, 0)
        with nginx_over(servers) as port:
            for url in urls:
                assert http_request(port, "GET", url)[0] == 200
        after = logged(logs, urls, sum(map(sum, before)) + len(urls))
        owners = {}
        for url, old, new in zip(urls, before, after, strict=True):
            (owner,) = [index for index in range(3) if new[index] > old[index]]
            owners[url] = owner
        return owners

    with instances(tmp_path) as (servers, logs):
        two = route(servers[:2], logs)
        three = route(servers, logs)
    moved = [url for url in urls if three[url] != two[url]]
    assert moved and all(three[url] == 2 for url in moved)  # only to the new instance
    assert len(moved) < len(urls) * 0.6  # about a third; the rest stay where they were cached


# --- the JPEG XL line of the Accept map ---------------------------------------------------------


def test_the_origins_format_order_holds_and_jpeg_xl_clients_get_their_own_entry(tmp_path: Path) -> None:
    """PROXY_AUTO_FORMATS=jxl,webp,avif and the map's JPEG XL line uncommented: Safari gets JPEG XL,
    Chromium and Firefox WebP (the origin's order, not AVIF), a client taking AVIF alone AVIF; each
    format from its own entry, and no client is ever sent another's."""
    way = start("nginx", tmp_path, {"PROXY_AUTO_FORMATS": "jxl,webp,avif"}, jxl=True)
    try:
        url = "/image/chelsea.png?w=120&fmt=auto"
        seen = []
        avif_only = "image/avif,*/*"
        for accept in (ACCEPT["safari"], ACCEPT["chromium"], avif_only, ACCEPT["safari"], ACCEPT["firefox"]):
            status, headers, _ = way.request(url, Accept=accept)
            assert status == 200
            seen.append((headers["x-cache"], headers["content-type"]))
        assert seen == [
            ("MISS", "image/jxl"),
            ("MISS", "image/webp"),
            ("MISS", "image/avif"),
            ("HIT", "image/jxl"),
            ("HIT", "image/webp"),
        ]
    finally:
        way.stop()


# --- what a browser sees through the front -------------------------------------------------------


@contextmanager
def pages(directory: Path, **files: str) -> Iterator[str]:
    """A plain HTTP server for ``files`` (name: HTML) on loopback; yields its base on localhost,
    another origin than the front's 127.0.0.1."""
    for name, html in files.items():
        (directory / name).write_text(html)
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@needs_browser
def test_in_chromium_through_the_front(chromium: Any, tmp_path: Path) -> None:
    """A page on another origin: a crossorigin image drawn on a canvas can be read back, an
    error's reason can be read, enlarge=1 gives the asked width, and with PROXY_MAX_AGE=0 a
    reload is answered 304 by nginx."""
    way = start("nginx", tmp_path, {"PROXY_MAX_AGE": "0"})
    base = f"http://127.0.0.1:{way.port}"
    site = tmp_path / "site"
    site.mkdir()
    html = (
        f'<!doctype html><img id="drawn" crossorigin="anonymous" src="{base}/image/rocket.jpg?w=64&fmt=png">'
        f'<img id="big" src="{base}/image/rocket.jpg?w=900&enlarge=1">'
        f'<img src="{base}/image/chelsea.png?w=80">'
    )
    loaded = "[...document.images].every(i => i.complete && i.naturalWidth > 0)"
    try:
        with pages(site, **{"page.html": html}) as origin:
            page = new_page(chromium)
            page.goto(f"{origin}/page.html")
            page.wait_for_function(loaded)
            pixel = page.evaluate(
                """() => { const image = document.getElementById('drawn');
                    const canvas = document.createElement('canvas');
                    canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
                    const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);
                    return Array.from(context.getImageData(10, 10, 1, 1).data); }"""
            )
            assert len(pixel) == 4 and pixel[3] == 255  # readable: the canvas is not tainted
            assert page.eval_on_selector("#big", "e => e.naturalWidth") == 900  # the rocket is 640 wide
            reason = page.evaluate(
                f"fetch('{base}/image/rocket.jpg?w=abc').then(r => [r.status, r.headers.get('X-Error')])"
            )
            assert reason[0] == 400 and reason[1].startswith("w: expected an integer")
            statuses = raw_statuses(page)
            page.reload()
            page.wait_for_function(loaded)
            page.wait_for_load_state("networkidle")
            assert statuses.count(304) >= 3, statuses  # every image revalidated...
            assert way.origin_requests("/image/chelsea.png?w=80", 1) == 1  # ...by nginx, not the origin
            unexpected = [e for e in page.errors if not e.startswith("Failed to load resource")]
            assert unexpected == []  # the 400 asked for and the page server's favicon 404 aside
    finally:
        way.stop()


def test_nginx_reuses_its_connections_to_gunicorn(way: Way) -> None:
    """gthread workers keep connections alive and the front keeps 16 idle ones: 40 misses in a
    row through nginx open a connection or two to gunicorn, not 40 (each closed one would linger
    in TIME_WAIT on one side or the other)."""

    def connections(state: str) -> int:
        port = way.origin.port
        out = subprocess.run(
            ["ss", "-Htan", "state", state, f"( sport = :{port} or dport = :{port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return len([line for line in out.splitlines() if line.strip()])

    before = connections("time-wait")
    for width in range(300, 340):
        status, headers, _ = way.request(f"/image/rocket.jpg?w={width}")
        assert status == 200 and headers["x-cache"] == "MISS"
    assert connections("time-wait") - before <= 2
    assert 1 <= connections("established") <= 2 * 16  # kept open, both ends counted


# --- deploy/nginx_local.py and deploy/varnish_local.py ------------------------------------------


def _modes(path: Path) -> dict[Path, tuple[int, int, int]]:
    """Mode and owner of ``path`` and of each of its parents."""
    return {p: (s.st_mode, s.st_uid, s.st_gid) for p in (path, *path.parents) for s in [p.stat()]}


def test_as_root_a_prefix_nobody_cannot_reach_is_refused_and_nothing_is_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prefix under a directory nobody cannot traverse, as anything under pytest's tmp_path is
    (/tmp/pytest-of-root is 0700): refused, naming that parent, and no parent opened to make it
    work (nor the prefix handed over)."""
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o700)
    prefix = closed / "nginx"
    prefix.mkdir()
    before = _modes(prefix)
    # Root, as CI is: the refusal comes before any chown, so any user can run this.
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(SystemExit, match=f"^{re.escape(str(closed))} is closed to nobody"):
        nginx_local.unprivileged(prefix, ["nginx", "-p", str(prefix)])
    assert _modes(prefix) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to nobody needs root")
def test_as_root_a_scratch_prefix_alone_is_handed_to_nobody() -> None:
    prefix = nginx_local.scratch("nginx")
    try:
        (prefix / "cache").mkdir()
        parents = _modes(prefix.parent)
        command = nginx_local.unprivileged(prefix, ["nginx", "-p", str(prefix)])
        assert command[0] == "setpriv" and command[-3:] == ["nginx", "-p", str(prefix)]
        nobody = (nginx_local.NOBODY.pw_uid, nginx_local.NOBODY.pw_gid)
        assert {(p.stat().st_uid, p.stat().st_gid) for p in (prefix, prefix / "cache")} == {nobody}
        assert _modes(prefix.parent) == parents
    finally:
        shutil.rmtree(prefix)


def test_as_a_user_the_command_is_returned_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    before = _modes(prefix)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    command = ["nginx", "-p", str(prefix)]
    assert nginx_local.unprivileged(prefix, command) == command
    assert _modes(prefix) == before


@pytest.mark.parametrize("script", ["deploy/nginx_local.py", "deploy/varnish_local.py"])
def test_the_local_scripts_explain_themselves(script: str) -> None:
    done = subprocess.run(
        [sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "the loopback port" in done.stdout

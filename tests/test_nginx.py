"""deploy/nginx.conf, run for real: Debian's nginx in front of a real gunicorn on loopback.

The deploy file is used as shipped, with only its three EDIT lines pointed at temporary
paths and ports. .ci/run installs nginx; without it these tests are skipped, and say so.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import pytest

from deploy.nginx_local import write_config

from .browser import ACCEPT, launch, needs_browser, new_page, raw_statuses
from .images import decode, encode, photo
from .server import REPO, Server, free_port, http_request, start_gunicorn

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (.ci/run installs it)"
)


@dataclass
class Front:
    origin: Server
    nginx: subprocess.Popen[bytes]
    port: int
    access_log: Path  # the origin's: one line per request that reached gunicorn

    def request(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        return http_request(self.port, "GET", path, {k.replace("_", "-"): v for k, v in headers.items()})

    def origin_requests(self, path: str, expected: int) -> int:
        """Requests for ``path`` that reached gunicorn, once ``expected`` are logged (or 2 s passed).

        gunicorn logs a request after answering it, so the line can trail the response a little;
        a moment more lets any unexpected extra line arrive too.
        """
        deadline = time.monotonic() + 2
        while self.access_log.read_text().count(f"GET {path} ") < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        return self.access_log.read_text().count(f"GET {path} ")

    def stop(self) -> None:
        self.nginx.send_signal(signal.SIGQUIT)
        self.nginx.wait(timeout=15)
        self.origin.stop()


def start_front(
    base: Path, workers: int | None = 2, validity: int | None = None, jxl: bool = False, **env: str
) -> Front:
    images = base / "images"
    images.mkdir()
    for name in ("rocket.jpg", "chelsea.png"):
        shutil.copy(REPO / "samples" / name, images / name)
    (images / "big.png").write_bytes(
        encode(photo(2000, 1500, seed=8), ".png", cv2.IMWRITE_PNG_COMPRESSION, 1)
    )
    access_log = base / "origin-access.log"
    origin = start_gunicorn(
        {
            "PROXY_IMAGE_ROOT": str(images),
            "PROXY_CACHE_DIR": str(base / "origin-cache"),
            "GUNICORN_ACCESSLOG": str(access_log),
            **env,
        },
        workers=workers,
    )
    port = free_port()
    command = write_config(base / "nginx", port, f"127.0.0.1:{origin.port}", validity=validity, jxl=jxl)
    nginx = subprocess.Popen(command)
    front = Front(origin, nginx, port, access_log)
    try:
        _wait_for(front)
    except RuntimeError:
        front.stop()
        raise RuntimeError(f"nginx did not start: {(base / 'nginx' / 'error.log').read_text()}") from None
    return front


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    front = start_front(tmp_path_factory.mktemp("front"))
    yield front
    front.stop()


def test_a_miss_then_hits_served_by_nginx(front: Front) -> None:
    status, first, body = front.request("/image/rocket.jpg?w=200")
    assert status == 200 and first["x-cache-status"] == "MISS"
    for _ in range(3):
        status, headers, again = front.request("/image/rocket.jpg?w=200")
        assert status == 200 and headers["x-cache-status"] == "HIT" and again == body
        assert headers["etag"] == first["etag"] and headers["content-type"] == "image/jpeg"
    assert front.origin_requests("/image/rocket.jpg?w=200", 1) == 1
    assert decode(body).shape == (133, 200, 3)


def test_conditional_get_end_to_end(front: Front) -> None:
    _, headers, _ = front.request("/image/rocket.jpg?w=150")
    status, again, body = front.request("/image/rocket.jpg?w=150", If_None_Match=headers["etag"])
    assert status == 304 and body == b"" and again["etag"] == headers["etag"]
    status, _, body = front.request("/image/rocket.jpg?w=150", If_None_Match='"other"')
    assert status == 200 and decode(body).shape[1] == 150


def test_vary_accept_is_respected(front: Front) -> None:
    url = "/image/chelsea.png?w=120&fmt=auto"
    for round_ in range(3):
        status, webp, body = front.request(url, Accept="image/webp,*/*")
        assert status == 200 and webp["content-type"] == "image/webp" and body[8:12] == b"WEBP"
        status, jpeg, body = front.request(url, Accept="*/*")
        assert status == 200 and jpeg["content-type"] == "image/jpeg" and body[:3] == b"\xff\xd8\xff"
        if round_:
            assert webp["x-cache-status"] == jpeg["x-cache-status"] == "HIT"
        assert "Accept" in webp["vary"] and "Accept" in jpeg["vary"]


def test_concurrent_identical_requests_reach_the_origin_once(front: Front) -> None:
    url = "/image/big.png?w=1999&fmt=webp"
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: front.request(url), range(10)))
    assert {status for status, _, _ in results} == {200}
    assert len({body for _, _, body in results}) == 1
    assert front.origin_requests(url, 1) == 1


def test_errors_are_not_cached(front: Front) -> None:
    for _ in range(2):
        status, headers, _ = front.request("/image/missing.jpg")
        assert status == 404 and headers["x-cache-status"] == "MISS"
    assert front.origin_requests("/image/missing.jpg", 2) == 2


def test_stale_variants_are_served_when_the_origin_is_down(tmp_path: Path) -> None:
    front = start_front(tmp_path, validity=1)
    try:
        status, headers, body = front.request("/image/rocket.jpg?w=90")
        assert status == 200 and headers["x-cache-status"] == "MISS"
        time.sleep(2.5)  # the cached copy is now stale (nginx counts whole seconds)
        for pid in front.origin.workers():  # the origin dies: workers and master
            os.kill(pid, signal.SIGKILL)
        front.origin.process.kill()
        front.origin.process.wait()
        status, headers, again = front.request("/image/rocket.jpg?w=90")
        assert status == 200 and headers["x-cache-status"] == "STALE" and again == body
        status, headers, _ = front.request("/image/rocket.jpg?w=91")  # never cached: nothing to serve
        assert status == 502
    finally:
        front.stop()


def test_the_fronts_validity_is_its_own_and_bounds_a_deleted_original(tmp_path: Path) -> None:
    """Browsers may be told max-age=0 or a day; nginx keeps its copy for its own validity, then
    revalidates (a 304 from the origin keeps it a hit), and a deleted original is a 404 after it."""
    front = start_front(tmp_path, validity=2, PROXY_MAX_AGE="0", PROXY_STALE_WHILE_REVALIDATE="0")
    try:
        shutil.copy(REPO / "samples" / "rocket.jpg", tmp_path / "images" / "gone.jpg")
        url = "/image/gone.jpg?w=80"
        status, first, body = front.request(url)
        assert status == 200 and first["x-cache-status"] == "MISS" and "max-age=0" in first["cache-control"]
        assert front.request(url)[1]["x-cache-status"] == "HIT"  # max-age=0 is for browsers only
        status, again, _ = front.request(url, If_None_Match=first["etag"])
        assert status == 304  # answered by nginx
        time.sleep(3)
        front.request(url)  # expired: revalidated, the origin answers 304 from a stat
        deadline = time.monotonic() + 2
        while '" 304 ' not in front.access_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert '" 304 ' in front.access_log.read_text()
        assert front.request(url)[1]["x-cache-status"] in ("HIT", "REVALIDATED")
        (tmp_path / "images" / "gone.jpg").unlink()
        time.sleep(3)  # past the validity
        statuses = [front.request(url)[0] for _ in range(3)]
        assert statuses == [404, 404, 404], statuses
    finally:
        front.stop()


def test_instances_partition_the_variants_and_survive_one_down(tmp_path: Path) -> None:
    """Three instances, each with its own cache, behind one nginx hashing URLs consistently."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(REPO / "samples" / "rocket.jpg", images / "rocket.jpg")
    instances, logs = [], []
    for index in range(3):
        logs.append(tmp_path / f"access-{index}.log")
        env = {
            "PROXY_IMAGE_ROOT": str(images),
            "PROXY_CACHE_DIR": str(tmp_path / f"cache-{index}"),
            "GUNICORN_ACCESSLOG": str(logs[-1]),
        }
        instances.append(start_gunicorn(env, workers=1))
    port = free_port()
    command = write_config(tmp_path / "nginx", port, *(f"127.0.0.1:{server.port}" for server in instances))
    nginx = subprocess.Popen(command)
    front = Front(instances[0], nginx, port, logs[0])
    try:
        _wait_for(front)
        urls = [f"/image/rocket.jpg?w={width}" for width in range(100, 160)]
        for url in urls:
            assert front.request(url)[0] == 200
        counts = [[log.read_text().count(f"GET {url} ") for log in logs] for url in urls]
        assert all(sorted(count) == [0, 0, 1] for count in counts)  # each variant on exactly one
        assert all(sum(count[index] for count in counts) > 5 for index in range(3))  # all share
        instances[2].stop()
        before = logs[2].read_text()
        for width in range(200, 240):  # new variants, some hashing to the stopped instance
            status, headers, body = front.request(f"/image/rocket.jpg?w={width}")
            assert status == 200 and decode(body).shape[1] == width
        assert logs[2].read_text() == before
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=15)
        for server in instances:
            server.stop()


def test_adding_an_instance_moves_only_its_share(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(REPO / "samples" / "rocket.jpg", images / "rocket.jpg")
    logs = [tmp_path / f"access-{index}.log" for index in range(3)]
    instances = [
        start_gunicorn(
            {
                "PROXY_IMAGE_ROOT": str(images),
                "PROXY_CACHE_DIR": str(tmp_path / f"cache-{i}"),
                "GUNICORN_ACCESSLOG": str(log),
            },
            workers=1,
        )
        for i, log in enumerate(logs)
    ]
    urls = [f"/image/rocket.jpg?w={width}" for width in range(100, 160)]

    def route(servers: list[Server], name: str) -> dict[str, int]:
        """Which instance each URL reaches through a fresh nginx (empty cache) over ``servers``."""
        before = [[log.read_text().count(f"GET {url} ") for log in logs] for url in urls]
        port = free_port()
        nginx = subprocess.Popen(
            write_config(tmp_path / name, port, *(f"127.0.0.1:{s.port}" for s in servers))
        )
        try:
            _wait_for(Front(servers[0], nginx, port, logs[0]))
            for url in urls:
                assert Front(servers[0], nginx, port, logs[0]).request(url)[0] == 200
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=15)
        after = [[log.read_text().count(f"GET {url} ") for log in logs] for url in urls]
        owners = {}
        for url, old, new in zip(urls, before, after, strict=True):
            (owner,) = [index for index in range(3) if new[index] > old[index]]
            owners[url] = owner
        return owners

    try:
        two = route(instances[:2], "nginx-two")
        three = route(instances, "nginx-three")
        moved = [url for url in urls if three[url] != two[url]]
        assert moved and all(three[url] == 2 for url in moved)  # only to the new instance
        assert len(moved) < len(urls) * 0.6  # about a third; the rest stay where they were cached
    finally:
        for server in instances:
            server.stop()


def _wait_for(front: Front) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if front.request("/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start")


# --- what browsers see through the front (issue: CORS, visible errors, enlarge, Accept) -------


def test_one_entry_per_url_and_format_whatever_the_browser(tmp_path: Path) -> None:
    """Chromium, Firefox and Safari all get AVIF: one entry; an old Safari gets JPEG: a second."""
    front = start_front(tmp_path)
    try:
        url = "/image/chelsea.png?w=140&fmt=auto"
        statuses = []
        for browser in ("chromium", "firefox", "safari", "old safari"):
            status, headers, body = front.request(url, Accept=ACCEPT[browser])
            assert status == 200 and "x-cache" not in headers  # the origin's X-Cache stays behind
            statuses.append((headers["x-cache-status"], headers["content-type"]))
        assert statuses == [
            ("MISS", "image/avif"),
            ("HIT", "image/avif"),
            ("HIT", "image/avif"),
            ("MISS", "image/jpeg"),
        ]
        entries = [path for path in (tmp_path / "nginx" / "cache").rglob("*") if path.is_file()]
        assert len(entries) == 2
        assert front.origin_requests(url, 2) == 2
    finally:
        front.stop()


def test_the_origins_format_order_holds_and_jpeg_xl_clients_get_their_own_entry(tmp_path: Path) -> None:
    """PROXY_AUTO_FORMATS=jxl,webp,avif and the map's JPEG XL line uncommented: Safari gets JPEG XL,
    Chromium and Firefox WebP (the origin's order, not AVIF), a client taking AVIF alone AVIF; each
    format from its own entry, and no client is ever sent another's."""
    front = start_front(tmp_path, jxl=True, PROXY_AUTO_FORMATS="jxl,webp,avif")
    try:
        url = "/image/chelsea.png?w=120&fmt=auto"
        seen = []
        avif_only = "image/avif,*/*"
        for accept in (ACCEPT["safari"], ACCEPT["chromium"], avif_only, ACCEPT["safari"], ACCEPT["firefox"]):
            status, headers, _ = front.request(url, Accept=accept)
            assert status == 200
            seen.append((headers["x-cache-status"], headers["content-type"]))
        assert seen == [
            ("MISS", "image/jxl"),
            ("MISS", "image/webp"),
            ("MISS", "image/avif"),
            ("HIT", "image/jxl"),
            ("HIT", "image/webp"),
        ]
    finally:
        front.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from launch()


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
    front = start_front(tmp_path, PROXY_MAX_AGE="0")
    base = f"http://127.0.0.1:{front.port}"
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
            assert front.origin_requests("/image/chelsea.png?w=80", 1) == 1  # ...by nginx, not the origin
            unexpected = [e for e in page.errors if not e.startswith("Failed to load resource")]
            assert unexpected == []  # the 400 asked for and the page server's favicon 404 aside
    finally:
        front.stop()


def test_nginx_reuses_its_connections_to_gunicorn(front: Front) -> None:
    """gthread workers keep connections alive and the front keeps 16 idle ones: 40 misses in a
    row through nginx open a connection or two to gunicorn, not 40 (each closed one would linger
    in TIME_WAIT on one side or the other)."""

    def connections(state: str) -> int:
        port = front.origin.port
        out = subprocess.run(
            ["ss", "-Htan", "state", state, f"( sport = :{port} or dport = :{port} )"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return len([line for line in out.splitlines() if line.strip()])

    before = connections("time-wait")
    for width in range(300, 340):
        status, headers, _ = front.request(f"/image/rocket.jpg?w={width}")
        assert status == 200 and headers["x-cache-status"] == "MISS"
    assert connections("time-wait") - before <= 2
    assert 1 <= connections("established") <= 2 * 16  # kept open, both ends counted

"""deploy/varnish.vcl, run for real: Debian's varnishd (with varnish-modules' xkey) in front of
a real gunicorn on loopback, the file used as shipped but for its backend address.

.ci/run installs varnish and varnish-modules; without them these tests are skipped, and say so.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.varnish_local import write_config
from proxy.purge import original_tag

from .images import decode
from .server import REPO, Server, free_port, http_request, start_gunicorn

pytestmark = pytest.mark.skipif(
    shutil.which("varnishd") is None and not Path("/usr/sbin/varnishd").exists(),
    reason="varnish is not installed (.ci/run installs it)",
)

TOKEN = "front-purge-token-0123456789"
VARIANTS = ["w=100", "w=200", "w=300&fmt=webp", "w=120&h=120&fit=cover&fmt=png", "w=80&fmt=auto"]
CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FIREFOX = "image/avif,image/webp,*/*"
SAFARI = (
    "image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,"
    "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
)
OLD_SAFARI = "image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"


@dataclass
class Front:
    origin: Server
    varnish: subprocess.Popen[bytes]
    port: int
    images: Path
    access_log: Path

    def request(
        self, path: str, method: str = "GET", port: int | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        return http_request(
            port or self.port, method, path, {k.replace("_", "-"): v for k, v in headers.items()}
        )

    def origin_lines(self, path: str) -> list[str]:
        time.sleep(0.2)  # gunicorn logs a request just after answering it
        return [line for line in self.access_log.read_text().splitlines() if f" {path} " in line]

    def stop(self) -> None:
        self.varnish.terminate()
        self.varnish.wait(timeout=15)
        self.origin.stop()


def start_front(base: Path, **env: str) -> Front:
    images = base / "images"
    images.mkdir()
    for name in ("rocket.jpg", "chelsea.png", "coffee.png"):
        shutil.copy(REPO / "samples" / name, images / name)
    access_log = base / "origin-access.log"
    origin = start_gunicorn(
        {
            "PROXY_IMAGE_ROOT": str(images),
            "PROXY_CACHE_DIR": str(base / "origin-cache"),
            "PROXY_PURGE_TOKEN": TOKEN,
            "GUNICORN_ACCESSLOG": str(access_log),
            **env,
        },
        workers=2,
    )
    port = free_port()
    varnish = subprocess.Popen(
        write_config(base / "varnish", port, f"127.0.0.1:{origin.port}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    front = Front(origin, varnish, port, images, access_log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if front.request("/healthz")[0] == 200:
                return front
        except OSError:
            pass
        time.sleep(0.1)
    front.stop()
    raise RuntimeError("varnishd did not start")


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    front = start_front(tmp_path_factory.mktemp("varnish"))
    yield front
    front.stop()


def test_a_miss_then_hits_served_by_varnish(front: Front) -> None:
    status, first, body = front.request("/image/rocket.jpg?w=200")
    assert status == 200 and first["x-cache"] == "MISS" and first["x-origin-cache"] == "MISS"
    for _ in range(3):
        status, headers, again = front.request("/image/rocket.jpg?w=200")
        assert status == 200 and headers["x-cache"] == "HIT" and again == body
        assert headers["etag"] == first["etag"] and headers["surrogate-key"] == original_tag("rocket.jpg")
    assert len(front.origin_lines("/image/rocket.jpg?w=200")) == 1
    assert "xkey" not in first and decode(body).shape == (133, 200, 3)


def test_conditional_requests_are_answered_by_varnish(front: Front) -> None:
    _, headers, _ = front.request("/image/rocket.jpg?w=150")
    status, again, body = front.request("/image/rocket.jpg?w=150", If_None_Match=headers["etag"])
    assert status == 304 and body == b"" and again["etag"] == headers["etag"]
    assert len(front.origin_lines("/image/rocket.jpg?w=150")) == 1


def test_browsers_share_entries_when_they_get_the_same_format(front: Front) -> None:
    url = "/image/chelsea.png?w=120&fmt=auto"
    status, avif, body = front.request(url, Accept=CHROMIUM)
    assert status == 200 and avif["content-type"] == "image/avif" and avif["x-cache"] == "MISS"
    for accept in (FIREFOX, SAFARI):
        status, again, same = front.request(url, Accept=accept)
        assert again["x-cache"] == "HIT" and same == body, accept
    status, jpeg, _ = front.request(url, Accept=OLD_SAFARI)
    assert jpeg["content-type"] == "image/jpeg" and jpeg["x-cache"] == "MISS"
    status, webp, _ = front.request(url, Accept="image/webp,image/avif;q=0")
    assert webp["content-type"] == "image/webp"  # avif refused by q=0: not the avif entry
    assert front.request(url, Accept="*/*")[1]["x-cache"] == "HIT"  # the JPEG entry
    assert len(front.origin_lines(url)) == 3


def test_the_origins_format_order_holds_through_varnish(tmp_path: Path) -> None:
    """PROXY_AUTO_FORMATS=webp,avif: a browser taking both gets WebP through the front too."""
    front = start_front(tmp_path, PROXY_AUTO_FORMATS="webp,avif")
    try:
        url = "/image/chelsea.png?w=90&fmt=auto"
        for accept, expected in (
            (CHROMIUM, "image/webp"),
            (FIREFOX, "image/webp"),
            ("image/avif", "image/avif"),
        ):
            status, headers, _ = front.request(url, Accept=accept)
            assert status == 200 and headers["content-type"] == expected, accept
    finally:
        front.stop()


def test_concurrent_misses_reach_the_origin_once(front: Front) -> None:
    url = "/image/rocket.jpg?w=639&fmt=webp"
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: front.request(url), range(10)))
    assert {status for status, _, _ in results} == {200} and len({body for _, _, body in results}) == 1
    assert len(front.origin_lines(url)) == 1


def test_one_purge_to_the_front_drops_the_original_from_varnish_and_the_origin(front: Front) -> None:
    accept = {"Accept": CHROMIUM}
    for query in VARIANTS:
        front.request(f"/image/coffee.png?{query}", **accept)
        assert front.request(f"/image/coffee.png?{query}", **accept)[1]["x-cache"] == "HIT", query
    front.request("/image/rocket.jpg?w=90")  # another original: untouched
    refused = front.request("/image/coffee.png", method="PURGE")
    assert refused[0] == 401 and front.request("/image/coffee.png?w=100")[1]["x-cache"] == "HIT"
    status, headers, body = front.request(
        "/image/coffee.png", method="PURGE", Authorization=f"Bearer {TOKEN}"
    )
    assert status == 200 and headers["x-front-purged"] == str(len(VARIANTS))
    assert b'"purged":5' in body  # the origin's own count
    for query in VARIANTS:  # the origin has none of them (asked directly)...
        direct = front.request(f"/image/coffee.png?{query}", port=front.origin.port, **accept)
        assert direct[1]["x-cache"] == "MISS", query
    for query in VARIANTS:  # ...and Varnish neither
        assert front.request(f"/image/coffee.png?{query}", **accept)[1]["x-cache"] == "MISS", query
    assert front.request("/image/rocket.jpg?w=90")[1]["x-cache"] == "HIT"


def test_a_deleted_original_is_404_through_the_front_after_a_purge(front: Front) -> None:
    shutil.copy(front.images / "rocket.jpg", front.images / "gone.jpg")
    assert front.request("/image/gone.jpg?w=64")[0] == 200
    assert front.request("/image/gone.jpg?w=64")[1]["x-cache"] == "HIT"
    (front.images / "gone.jpg").unlink()
    assert front.request("/image/gone.jpg?w=64")[0] == 200  # cached: still served until purged
    status, _, body = front.request("/image/gone.jpg", method="PURGE", Authorization=f"Bearer {TOKEN}")
    assert status == 200 and b'"purged":1' in body
    assert front.request("/image/gone.jpg?w=64")[0] == 404


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[Front]:
    front = start_front(tmp_path, PROXY_MAX_AGE="1")
    yield front
    front.stop()


def test_expired_copies_are_revalidated_by_etag_and_served_stale_while_the_origin_fails(
    short_lived: Front,
) -> None:
    url = "/image/rocket.jpg?w=120"
    status, first, body = short_lived.request(url)
    assert status == 200
    time.sleep(1.5)  # past max-age: within grace, a hit starts a background revalidation
    assert short_lived.request(url)[2] == body
    deadline = time.monotonic() + 5
    while '" 304 ' not in "".join(short_lived.origin_lines(url)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [line for line in short_lived.origin_lines(url) if '" 304 ' in line], "not revalidated by ETag"
    time.sleep(1.5)
    short_lived.origin.stop()  # the origin fails: the stale copy is served
    status, headers, stale = short_lived.request(url)
    assert status == 200 and stale == body and headers["etag"] == first["etag"]

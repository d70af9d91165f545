"""What a browser or a CDN sees, once per way to the origin: straight to gunicorn, through
deploy/nginx.conf and through deploy/varnish.vcl (tests/support/fronts.py), so that every behaviour
here holds through both shipped fronts by default.

Where a front cannot do what the origin does, the test says so by name (nginx cannot purge:
its copies last its validity, and versioned URLs are what reaches it at once)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import pytest

from proxy import create_app
from proxy.purge import original_tag
from proxy.settings import Settings
from proxy.urls import image_url, version_token

from .support.browser import ACCEPT, new_page
from .support.fronts import PATHS, TOKEN, Way, start
from .support.images import decode, encode, photo, quadrants
from .support.upstreams import WebOriginals, web_originals

pytestmark = pytest.mark.integration

PAGE_A, PAGE_B = "https://shop.example", "https://blog.example"
VALIDITY = 2  # nginx's own validity here (30 s as shipped): how long it may answer a purged copy
ENV = {
    "PROXY_CORS_ORIGINS": f"{PAGE_A},{PAGE_B}",
    "PROXY_ERROR_IMAGE": "1",
    "PROXY_URL_HOSTS": "127.0.0.1",
    "PROXY_ALLOW_PRIVATE_ADDRESSES": "1",  # the /url/ upstream is on loopback
    "PROXY_CLIENT_HINTS": "1",
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[WebOriginals]:
    with web_originals() as server:
        server.files["photo.jpg"] = encode(photo(300, 200), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90)
        yield server


@pytest.fixture(scope="module", params=PATHS)
def way(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Way]:
    """The origin with a shared result tier (a directory), as every instance of a fleet has."""
    base = tmp_path_factory.mktemp(request.param)
    tier = base / "tier"
    way = start(request.param, base, {**ENV, "PROXY_RESULT_STORE": tier.as_uri() + "/"}, validity=VALIDITY)
    way.extra["tier"] = tier
    yield way
    way.stop()


def test_the_cache_status_is_x_cache_and_scripts_may_read_it(way: Way) -> None:
    url = "/image/rocket.jpg?w=201"
    assert way.request(url)[1]["x-cache"] == "MISS"
    assert way.request(url)[1]["x-cache"] == "HIT"
    _, headers, _ = way.request(url, Origin=PAGE_A)
    assert "X-Cache" in headers["access-control-expose-headers"]


def test_each_page_origin_gets_its_own_cors_answer_304s_included(way: Way) -> None:
    url = "/image/rocket.jpg?w=202"
    for _ in range(2):  # a miss, then from the front's cache
        for page in (PAGE_A, PAGE_B):
            status, headers, _ = way.request(url, Origin=page)
            assert status == 200 and headers["access-control-allow-origin"] == page, page
    etag = way.request(url)[1]["etag"]
    for page in (PAGE_A, PAGE_B):
        status, headers, _ = way.request(url, Origin=page, If_None_Match=etag)
        assert status == 304 and headers.get("access-control-allow-origin") == page, page
    for headers in (way.request(url, Origin="https://evil.example")[1], way.request(url)[1]):
        assert "access-control-allow-origin" not in headers


def test_errors_are_never_stored(way: Way) -> None:
    """'I uploaded it and it is still broken': a 404 is not replayed once the original exists."""
    url = "/image/later.jpg?w=60"
    for _ in range(2):
        status, headers, _ = way.request(url)
        assert status == 404 and headers["cache-control"] == "no-store"
    assert way.origin_requests(url, 2) == 2
    shutil.copy(way.images / "rocket.jpg", way.images / "later.jpg")
    status, _, body = way.request(url)
    assert status == 200 and decode(body).shape[1] == 60


def test_edits_marks_and_budgets_through_every_path(way: Way) -> None:
    """A URL of the new parameters is one object like any other; a budget nothing fits is a 422,
    never stored, so every ask reaches the origin."""
    url = "/image/coffee.png?w=120&rot=90&blur=1&mark_text=Hi&q=auto&fmt=jpeg"  # 600 x 400, turned
    first = way.request(url)
    assert first[0] == 200 and decode(first[2]).shape[:2] == (180, 120)
    again = way.request(url)
    assert again[2] == first[2] and again[1]["x-cache"] == "HIT" and again[1]["etag"] == first[1]["etag"]
    over = "/image/coffee.png?fmt=png&maxbytes=100"
    for _ in range(2):
        status, headers, body = way.request(over)
        assert status == 422 and headers["cache-control"] == "no-store"
        assert json.loads(body)["error"].startswith("maxbytes:")
    assert way.origin_requests(over, 2) == 2


@pytest.mark.parametrize("fmt", ["", "&fmt=jpeg", "&fmt=webp", "&fmt=auto"])
def test_a_browser_gets_a_placeholder_and_a_script_json(way: Way, fmt: str) -> None:
    url = f"/image/nothing.jpg?w=50{fmt}"
    for _ in range(2):  # neither answer is kept for the other kind of client
        status, headers, body = way.request(url, Accept=ACCEPT["chromium"])
        assert status == 404 and headers["content-type"] == "image/png" and decode(body).shape == (90, 160, 3)
        status, headers, body = way.request(url, Accept="*/*")
        assert status == 404 and headers["content-type"] == "application/json"
        assert json.loads(body) == {"status": 404, "error": "no such image"}


def test_url_originals(way: Way, upstream: WebOriginals) -> None:
    encoded = base64.urlsafe_b64encode(f"{upstream.base}img/photo.jpg".encode()).rstrip(b"=").decode()
    url = f"/url/{encoded}?w=120&fmt=png"
    status, headers, body = way.request(url)
    assert status == 200 and headers["content-type"] == "image/png" and decode(body).shape == (80, 120, 3)
    assert way.request(url)[1]["x-cache"] == "HIT"


def test_info_is_the_origin_s_document_and_etag_on_every_path_and_revalidates(way: Way) -> None:
    """/info/ reaches the origin through both fronts and is kept like an image: one origin request
    for two clients, the origin's bytes and ETag, a 304 to a revalidation, CORS per page; and a
    PURGE of the original drops it from Varnish and the origin (nginx cannot purge)."""
    shutil.copy(way.images / "chelsea.png", way.images / "about.png")
    url = "/info/about.png"
    status, headers, body = way.request(url)
    assert status == 200 and headers["content-type"] == "application/json"
    found = json.loads(body)
    assert (found["id"], found["format"], found["width"], found["height"]) == ("about.png", "png", 451, 300)
    assert way.request(url)[1]["x-cache"] == "HIT"
    assert way.front is None or way.origin_requests(url, 1) == 1  # the front asked the origin once
    _, direct, direct_body = way.request(url, port=way.origin.port)
    assert direct_body == body and direct["etag"] == headers["etag"]
    status, revalidated, empty = way.request(url, If_None_Match=headers["etag"])
    assert status == 304 and not empty and revalidated["etag"] == headers["etag"]
    assert way.request(url, Origin=PAGE_A)[1]["access-control-allow-origin"] == PAGE_A
    status, _, _ = way.request("/image/about.png", method="PURGE", Authorization=f"Bearer {TOKEN}")
    assert status == 200
    if way.name != "nginx":
        assert way.request(url)[1]["x-cache"] == "MISS"


def test_one_object_per_explicit_format_whoever_asks(way: Way) -> None:
    url = "/image/chelsea.png?w=130&fmt=jpeg"
    answers = [way.request(url, Accept=ACCEPT[browser]) for browser in ("chromium", "old safari", "firefox")]
    answers.append(way.request(url, Accept="*/*"))
    assert [headers["content-type"] for _, headers, _ in answers] == ["image/jpeg"] * 4
    assert [headers["x-cache"] for _, headers, _ in answers] == ["MISS", "HIT", "HIT", "HIT"]
    assert way.front is None or way.origin_requests(url, 1) == 1  # a front asked the origin once


def test_auto_gives_each_format_class_its_own_object(way: Way) -> None:
    url = "/image/chelsea.png?w=140&fmt=auto"
    seen = []
    for browser in ("chromium", "firefox", "safari", "old safari", "old safari"):
        status, headers, _ = way.request(url, Accept=ACCEPT[browser])
        assert status == 200 and "Accept" in headers["vary"]
        seen.append((headers["content-type"], headers["x-cache"]))
    assert seen == [
        ("image/avif", "MISS"),
        ("image/avif", "HIT"),
        ("image/avif", "HIT"),
        ("image/jpeg", "MISS"),
        ("image/jpeg", "HIT"),
    ]
    assert way.front is None or way.origin_requests(url, 2) == 2


def test_best_keeps_one_object_per_format_class(way: Way) -> None:
    url = "/image/chelsea.png?w=150&fmt=best"
    seen = []
    for browser in ("chromium", "firefox", "old safari", "old safari"):
        status, headers, body = way.request(url, Accept=ACCEPT[browser])
        assert status == 200 and "Accept" in headers["vary"]
        seen.append((headers["x-cache"], len(body)))
    assert [cache for cache, _ in seen] == ["MISS", "HIT", "MISS", "HIT"]
    webp = way.request("/image/chelsea.png?w=150&fmt=webp")[2]
    jpeg = way.request("/image/chelsea.png?w=150&fmt=jpeg")[2]
    assert seen[0][1] <= len(webp) and seen[2][1] == len(jpeg)  # the smallest; JPEG for old Safari
    assert way.front is None or way.origin_requests(url, 2) == 2


def test_a_purge_and_a_versioned_url(way: Way) -> None:
    """After the original is replaced and purged, its versioned URL shows the new picture at once
    on every path; its plain URL does too, except through nginx, which cannot purge and answers
    its copy until its validity ends."""
    (way.images / "swap.png").write_bytes(encode(photo(200, 100), ".png"))
    plain = "/image/swap.png?w=100"
    old = way.request(plain)[2]
    assert way.request(plain)[1]["x-cache"] == "HIT"
    (way.images / "swap.png").write_bytes(encode(quadrants(200, 100), ".png"))
    version = f"{(way.images / 'swap.png').stat().st_size:x}"  # any token that changed will do
    status, headers, body = way.request("/image/swap.png", method="PURGE", Authorization=f"Bearer {TOKEN}")
    assert status == 200 and json.loads(body)["purged"] >= 1
    assert json.loads(body)["tag"] == original_tag("swap.png") == headers["surrogate-key"]
    versioned = image_url("swap.png", w=100, v=version_token(version))
    status, headers, new = way.request(versioned)
    assert status == 200 and tuple(decode(new)[2, 2]) == (0, 0, 255)  # the quadrants' red corner
    status, headers, again = way.request(plain)
    if way.name == "nginx":
        assert again == old and headers["x-cache"] == "HIT"  # the documented window
        time.sleep(VALIDITY + 1.1)
        again = way.request(plain)[2]
    assert tuple(decode(again)[2, 2]) == (0, 0, 255)


def test_another_instances_render_is_served_from_the_shared_tier_and_purged_from_it(
    way: Way, tmp_path: Path
) -> None:
    """A variant another instance rendered (an app in this process, over the same originals and
    tier, with a disk of its own) is answered with its bytes and ETag, rendering nothing; a PURGE
    through the front removes the original's objects from the tier."""
    tier: Path = way.extra["tier"]  # type: ignore[assignment]
    other = create_app(
        Settings(image_root=way.images, cache_dir=tmp_path / "other", result_store=tier.as_uri() + "/")
    )
    url = "/image/chelsea.png?w=130&fmt=webp"
    with other.test_client() as client:
        rendered = client.get(url)
    results = other.extensions["proxy"].results
    assert rendered.headers["X-Cache"] == "MISS" and results.flush(10)

    before = _metric(way, 'image_origin_cache_requests_total{outcome="shared"}')
    status, headers, body = way.request(url)
    assert status == 200 and body == rendered.data and headers["etag"] == rendered.headers["ETag"]
    assert decode(body).shape[1] == 130
    assert _metric(way, 'image_origin_cache_requests_total{outcome="shared"}') == before + 1  # not rendered
    seen_by_origin = {"origin": "x-cache", "varnish": "x-origin-cache"}.get(way.name)
    if seen_by_origin is not None:  # nginx hides the origin's X-Cache behind its own
        assert headers[seen_by_origin] == "HIT-SHARED"

    status, _, body = way.request("/image/chelsea.png", method="PURGE", Authorization=f"Bearer {TOKEN}")
    assert status == 200 and json.loads(body)["purged"] >= 2  # the tier's object and the local one
    assert not (tier / original_tag("chelsea.png")).exists()


def _metric(way: Way, sample: str) -> float:
    """A sample of the origin's /metrics, asked of gunicorn itself (fronts do not pass /metrics on)."""
    text = way.request("/metrics", port=way.origin.port)[2].decode()
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, flags=re.M)
    return float(found.group(1)) if found else 0.0


def test_client_hints_are_rounded_and_keyed_as_the_origin_does(way: Way) -> None:
    """Two slot widths in one step share an object; another step, another density or Save-Data
    is another; what the origin answers always matches the object it is kept as."""
    url = "/image/coffee.png?fmt=jpeg"  # 600 x 400; w, dpr and q left to the client
    first = way.request(url, Sec_CH_Width="237")
    assert first[0] == 200 and decode(first[2]).shape[1] == 300
    assert "Sec-CH-Width" in first[1]["vary"]
    again = way.request(url, Sec_CH_Width="280")  # the same step of 100
    assert again[2] == first[2] and again[1]["x-cache"] == "HIT"
    wider = way.request(url, Sec_CH_Width="301")
    assert decode(wider[2]).shape[1] == 400 and wider[1]["x-cache"] == "MISS"
    assert first[1]["etag"] == way.request("/image/coffee.png?fmt=jpeg&w=300")[1]["etag"]
    dense = way.request("/image/coffee.png?fmt=jpeg&w=100", Sec_CH_DPR="1.7")
    assert decode(dense[2]).shape[1] == 200
    denser = way.request("/image/coffee.png?fmt=jpeg&w=100", Sec_CH_DPR="2")  # 1.7 rounds up to 2
    assert denser[2] == dense[2] and denser[1]["x-cache"] == "HIT"
    saving = way.request("/image/coffee.png?fmt=jpeg&w=120", Save_Data="on")
    plain = way.request("/image/coffee.png?fmt=jpeg&w=120")
    assert len(saving[2]) < len(plain[2]) and plain[1]["x-cache"] == "MISS"
    assert way.request("/image/coffee.png?fmt=jpeg&w=120", Save_Data="ON")[1]["x-cache"] == "HIT"
    if way.front is not None:  # 237 and 280 reached gunicorn once, 1.7 and 2 once
        assert way.origin_requests(url, 2) == 2
        assert way.origin_requests("/image/coffee.png?fmt=jpeg&w=100", 1) == 1


class _Page(BaseHTTPRequestHandler):
    """A site on another origin than the images: it opts in to client hints and delegates them."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        images = self.server.images  # type: ignore[attr-defined]
        body = f'<img id="slot" sizes="150px" src="{images}/image/coffee.png?fmt=jpeg&v=hinted">'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Accept-CH", "Sec-CH-Width, Sec-CH-DPR")
        self.send_header("Permissions-Policy", f'ch-width=(self "{images}"), ch-dpr=(self "{images}")')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_chromium_sizes_an_image_from_a_page_that_delegates_its_hints(way: Way, chromium: object) -> None:
    """The page side as docs/url.md shows it: Accept-CH and Permissions-Policy on a page of
    another origin; Chromium at 2x sends a 150 px slot as Sec-CH-Width: 300, through each path."""
    site = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    site.images = f"http://127.0.0.1:{way.port}"  # type: ignore[attr-defined]
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        page = new_page(chromium, scale=2)
        page.goto(f"http://127.0.0.1:{site.server_address[1]}/")
        page.wait_for_function("document.getElementById('slot').complete")
        assert page.eval_on_selector("#slot", "e => e.naturalWidth") == 300
    finally:
        site.shutdown()
        site.server_close()


@pytest.fixture(scope="module", params=PATHS)
def cache_tag_way(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Way]:
    base = tmp_path_factory.mktemp(f"{request.param}-cache-tag")
    way = start(request.param, base, {"PROXY_TAG_HEADERS": "Cache-Tag"}, validity=VALIDITY)
    yield way
    way.stop()


def test_the_tag_header_named_is_what_purges_go_by(cache_tag_way: Way) -> None:
    way = cache_tag_way
    url = "/image/coffee.png?w=90"
    status, headers, _ = way.request(url)
    assert status == 200 and "surrogate-key" not in headers
    assert headers["cache-tag"].split(",")[0] == original_tag("coffee.png")
    assert way.request(url)[1]["x-cache"] == "HIT"
    status, headers, _ = way.request("/image/coffee.png", method="PURGE", Authorization=f"Bearer {TOKEN}")
    assert status == 200 and headers["cache-tag"] == original_tag("coffee.png")
    if way.name == "varnish":
        assert headers["x-front-purged"] == "1"
    time.sleep(0.6)  # every worker's memory tier lets go within half a second (docs/caching.md)
    expected = "HIT" if way.name == "nginx" else "MISS"  # nginx cannot purge (its validity)
    assert way.request(url)[1]["x-cache"] == expected

"""deploy/varnish.vcl, run for real: Debian's varnishd (with varnish-modules' xkey) in front of
a real gunicorn on loopback, the file used as shipped but for its backend address
(tests/support/fronts.py, from a scratch directory).

What holds on every way to the origin (the cache status, CORS, errors never stored, one entry
per format, purges and versioned URLs, tag headers) is tested through Varnish too, in
tests/test_behaviour.py. Here is what only Varnish does: its entries per format class, its
coalescing, xkey purges counted, revalidation by ETag and stale copies while the origin fails.
.ci/run installs varnish and varnish-modules; without them these tests are skipped, and say so.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from proxy.purge import original_tag

from .support.browser import ACCEPT
from .support.fronts import TOKEN, Way, start
from .support.images import decode
from .support.servers import eventually

pytestmark = pytest.mark.integration

VARIANTS = ["w=100", "w=200", "w=300&fmt=webp", "w=120&h=120&fit=cover&fmt=png", "w=80&fmt=auto"]


@pytest.fixture(scope="module")
def way(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Way]:
    way = start("varnish", tmp_path_factory.mktemp("varnish"))
    yield way
    way.stop()


def test_a_miss_then_hits_served_by_varnish(way: Way) -> None:
    status, first, body = way.request("/image/rocket.jpg?w=200")
    assert status == 200 and first["x-cache"] == "MISS" and first["x-origin-cache"] == "MISS"
    for _ in range(3):
        status, headers, again = way.request("/image/rocket.jpg?w=200")
        assert status == 200 and headers["x-cache"] == "HIT" and again == body
        assert headers["etag"] == first["etag"] and headers["surrogate-key"] == original_tag("rocket.jpg")
    assert way.origin_requests("/image/rocket.jpg?w=200", 1) == 1
    assert "xkey" not in first and decode(body).shape == (133, 200, 3)


def test_conditional_requests_are_answered_by_varnish(way: Way) -> None:
    _, headers, _ = way.request("/image/rocket.jpg?w=150")
    status, again, body = way.request("/image/rocket.jpg?w=150", If_None_Match=headers["etag"])
    assert status == 304 and body == b"" and again["etag"] == headers["etag"]
    assert way.origin_requests("/image/rocket.jpg?w=150", 1) == 1


def test_browsers_share_entries_when_they_get_the_same_format(way: Way) -> None:
    """One entry per format for browsers, and JPEG twice: for a browser's image request (its
    Accept starts with an image type) and for a script's (*/*), since an error answers the one
    with a placeholder image and the other with JSON (vcl_recv)."""
    url = "/image/chelsea.png?w=120&fmt=auto"
    status, avif, body = way.request(url, Accept=ACCEPT["chromium"])
    assert status == 200 and avif["content-type"] == "image/avif" and avif["x-cache"] == "MISS"
    for accept in (ACCEPT["firefox"], ACCEPT["safari"]):
        status, again, same = way.request(url, Accept=accept)
        assert again["x-cache"] == "HIT" and same == body, accept
    status, jpeg, _ = way.request(url, Accept=ACCEPT["old safari"])
    assert jpeg["content-type"] == "image/jpeg" and jpeg["x-cache"] == "MISS"
    status, webp, _ = way.request(url, Accept="image/webp,image/avif;q=0")
    assert webp["content-type"] == "image/webp"  # avif refused by q=0: not the avif entry
    status, script, _ = way.request(url, Accept="*/*")
    assert script["content-type"] == "image/jpeg" and script["x-cache"] == "MISS"  # the script's JPEG
    assert way.request(url, Accept="*/*")[1]["x-cache"] == "HIT"
    assert way.request(url, Accept="text/html,*/*;q=0.8")[1]["x-cache"] == "HIT"  # any non-image Accept
    assert way.request(url, Accept="image/*")[1]["x-cache"] == "HIT"  # the browsers' JPEG
    assert way.origin_requests(url, 4) == 4


def test_the_origins_format_order_holds_through_varnish(tmp_path: Path) -> None:
    """PROXY_AUTO_FORMATS=webp,avif: a browser taking both gets WebP through the front too."""
    way = start("varnish", tmp_path, {"PROXY_AUTO_FORMATS": "webp,avif"})
    try:
        url = "/image/chelsea.png?w=90&fmt=auto"
        for accept, expected in (
            (ACCEPT["chromium"], "image/webp"),
            (ACCEPT["firefox"], "image/webp"),
            ("image/avif", "image/avif"),
        ):
            status, headers, _ = way.request(url, Accept=accept)
            assert status == 200 and headers["content-type"] == expected, accept
    finally:
        way.stop()


def test_concurrent_misses_reach_the_origin_once(way: Way) -> None:
    url = "/image/rocket.jpg?w=639&fmt=webp"
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: way.request(url), range(10)))
    assert {status for status, _, _ in results} == {200} and len({body for _, _, body in results}) == 1
    assert way.origin_requests(url, 1) == 1


def test_one_purge_to_the_front_drops_the_original_from_varnish_and_the_origin(way: Way) -> None:
    chromium = ACCEPT["chromium"]
    for query in VARIANTS:
        way.request(f"/image/coffee.png?{query}", Accept=chromium)
        assert way.request(f"/image/coffee.png?{query}", Accept=chromium)[1]["x-cache"] == "HIT", query
    way.request("/image/rocket.jpg?w=90")  # another original: untouched
    refused = way.request("/image/coffee.png", method="PURGE")
    assert refused[0] == 401 and way.request("/image/coffee.png?w=100")[1]["x-cache"] == "HIT"
    status, headers, body = way.request("/image/coffee.png", method="PURGE", Authorization=f"Bearer {TOKEN}")
    assert status == 200 and headers["x-front-purged"] == str(len(VARIANTS))
    assert b'"purged":5' in body  # the origin's own count
    for query in VARIANTS:  # the origin has none of them (asked directly)...
        direct = way.request(f"/image/coffee.png?{query}", port=way.origin.port, Accept=chromium)
        assert direct[1]["x-cache"] == "MISS", query
    for query in VARIANTS:  # ...and Varnish neither
        assert way.request(f"/image/coffee.png?{query}", Accept=chromium)[1]["x-cache"] == "MISS", query
    assert way.request("/image/rocket.jpg?w=90")[1]["x-cache"] == "HIT"


def test_a_deleted_original_is_404_through_the_front_after_a_purge(way: Way) -> None:
    shutil.copy(way.images / "rocket.jpg", way.images / "gone.jpg")
    assert way.request("/image/gone.jpg?w=64")[0] == 200
    assert way.request("/image/gone.jpg?w=64")[1]["x-cache"] == "HIT"
    (way.images / "gone.jpg").unlink()
    assert way.request("/image/gone.jpg?w=64")[0] == 200  # cached: still served until purged
    status, _, body = way.request("/image/gone.jpg", method="PURGE", Authorization=f"Bearer {TOKEN}")
    assert status == 200 and b'"purged":1' in body
    assert way.request("/image/gone.jpg?w=64")[0] == 404


@pytest.fixture
def short_lived(tmp_path: Path) -> Iterator[Way]:
    way = start("varnish", tmp_path, {"PROXY_MAX_AGE": "1"})
    yield way
    way.stop()


@pytest.mark.slow
def test_expired_copies_are_revalidated_by_etag_and_served_stale_while_the_origin_fails(
    short_lived: Way,
) -> None:
    url = "/image/rocket.jpg?w=120"
    status, first, body = short_lived.request(url)
    assert status == 200
    time.sleep(1.5)  # past max-age: within grace, a hit starts a background revalidation
    assert short_lived.request(url)[2] == body

    def revalidations() -> list[str]:
        lines = short_lived.access_log.read_text().splitlines()
        return [line for line in lines if f"GET {url} " in line and '" 304 ' in line]

    assert eventually(revalidations, bool), "not revalidated by ETag"
    time.sleep(1.5)
    short_lived.origin.stop()  # the origin fails: the stale copy is served
    status, headers, stale = short_lived.request(url)
    assert status == 200 and stale == body and headers["etag"] == first["etag"]

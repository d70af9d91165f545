"""Remote originals under faults: upstreams that fail, hang, trickle, lie and refuse, over real
loopback servers (a small HTTP server, and one standing in for S3's endpoint).

What a client sees: a documented status (502, 504) within PROXY_FETCH_TIMEOUT plus about a
second, however many wait on the same original; a fixed public message; one attempt per
original while it keeps failing; a known copy answering at once past its TTL."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from proxy import create_app
from proxy.cache import VariantCache
from proxy.purge import original_tag
from proxy.settings import Settings, parse_source
from proxy.sources import COPIES

from .support.images import decode
from .support.servers import eventually, free_port, start_gunicorn
from .support.upstreams import WebOriginals

TIMEOUT = 1.0  # PROXY_FETCH_TIMEOUT for these tests
GRACE = 1.0  # what the documentation allows past it


@pytest.fixture
def upstream(upstream: WebOriginals) -> WebOriginals:
    """conftest.py's, trickling faster than its default."""
    upstream.trickle = 2048
    return upstream


def mounted(settings: Settings, upstream: WebOriginals, **changes: object) -> FlaskClient:
    base = upstream.base
    mounts = [f"{kind}/={base}{kind}/" for kind in ("img", "hang", "trickle", "half", "dated", "fail")]
    mounts += [f"refused/=http://127.0.0.1:{free_port()}/", f"={settings.image_root.as_uri()}"]
    source = parse_source("PROXY_SOURCE", ",".join(mounts))
    changes = {"fetch_timeout": TIMEOUT, "source": source, **changes}
    return create_app(replace(settings, **changes)).test_client()  # type: ignore[arg-type]


def assert_public_error(response: TestResponse, status: int, upstream: WebOriginals) -> None:
    """The documented status and message, nothing of the upstream, and nothing to cache."""
    message = {502: "upstream failed", 504: "upstream timed out"}[status]
    assert response.status_code == status
    assert response.get_json() == {"status": status, "error": message}
    assert response.headers["X-Error"] == message and response.headers["Cache-Control"] == "no-store"
    shown = response.get_data(as_text=True) + str(response.headers)
    for secret in ("127.0.0.1", f":{upstream.server_address[1]}", "http:", "urllib3", "onnection", "/img/"):
        assert secret not in shown


def timed(client: FlaskClient, path: str) -> tuple[TestResponse, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


@pytest.mark.parametrize(
    ("mount", "status"), [("fail", 502), ("refused", 502), ("hang", 504), ("trickle", 504)]
)
def test_each_fault_is_its_documented_status_within_the_timeout(
    settings: Settings, upstream: WebOriginals, mount: str, status: int
) -> None:
    client = mounted(settings, upstream)
    response, took = timed(client, f"/image/{mount}/photo.jpg?w=50")
    assert_public_error(response, status, upstream)
    assert took < TIMEOUT + GRACE


def test_clients_waiting_on_one_hanging_original_share_one_attempt(
    settings: Settings, upstream: WebOriginals
) -> None:
    client = mounted(settings, upstream)
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda w: timed(client, f"/image/hang/photo.jpg?w={w}"), range(40, 52)))
    for response, took in answers:
        assert_public_error(response, 504, upstream)
        assert took < TIMEOUT + GRACE
    assert upstream.gets["/hang/photo.jpg"] == 1
    # Remembered for a while: answered at once, upstream not asked again.
    response, took = timed(client, "/image/hang/photo.jpg?w=60")
    assert_public_error(response, 504, upstream)
    assert took < 0.5 and upstream.gets["/hang/photo.jpg"] == 1


def test_other_mounts_answer_while_an_upstream_hangs(settings: Settings, upstream: WebOriginals) -> None:
    client = mounted(settings, upstream)
    assert client.get("/image/photo.jpg?w=30").status_code == 200  # a hit from now on
    with ThreadPoolExecutor(16) as pool:
        stuck = [pool.submit(client.get, f"/image/hang/photo.jpg?w={w}") for w in range(10, 26)]
        time.sleep(0.2)
        hit, took = timed(client, "/image/photo.jpg?w=30")
        other, other_took = timed(client, "/image/img/photo.jpg?w=30")  # another remote mount, a miss
        assert [future.result().status_code for future in stuck] == [504] * 16
    assert hit.status_code == 200 and hit.headers["X-Cache"] == "HIT" and took < 0.5
    assert other.status_code == 200 and decode(other.data).shape[1] == 30 and other_took < TIMEOUT


@pytest.mark.slow
def test_an_evicted_copy_while_upstream_fails_is_502_not_500(
    settings: Settings, upstream: WebOriginals
) -> None:
    client = mounted(settings, upstream)
    assert client.get("/image/img/photo.jpg?w=80").status_code == 200
    VariantCache(settings.cache_dir / COPIES, settings.source_cache_size).purge(original_tag("img/photo.jpg"))
    upstream.broken = True
    for width in (81, 82, 83):  # new sizes: each needs the original's bytes
        response, took = timed(client, f"/image/img/photo.jpg?w={width}")
        assert_public_error(response, 502, upstream)
    assert upstream.gets["/img/photo.jpg"] == 2  # one attempt, then remembered
    assert client.get("/image/img/photo.jpg?w=80").headers["X-Cache"] == "HIT"  # what was rendered stays
    upstream.broken = False
    time.sleep(5.1)  # the failure is forgotten: the copy comes back
    assert decode(client.get("/image/img/photo.jpg?w=84").data).shape[1] == 84


def test_a_known_copy_answers_at_once_past_its_ttl_while_upstream_hangs(
    settings: Settings, upstream: WebOriginals
) -> None:
    client = mounted(settings, upstream, source_ttl=0.2)
    etag = client.get("/image/img/photo.jpg?w=70").headers["ETag"]
    upstream.hanging = True
    time.sleep(0.3)
    for width in (70, 71):  # a hit and a new size, both from the known copy
        response, took = timed(client, f"/image/img/photo.jpg?w={width}")
        assert response.status_code == 200 and took < 0.5
        assert decode(response.data).shape[1] == width
    assert client.get("/image/img/photo.jpg?w=70").headers["ETag"] == etag
    eventually(lambda: upstream.gets["/img/photo.jpg"], lambda count: count == 2)
    assert upstream.gets["/img/photo.jpg"] == 2  # one revalidation, off the request path
    time.sleep(TIMEOUT + 0.3)  # it timed out: the copy is kept (stale-if-error)
    assert client.get("/image/img/photo.jpg?w=70").headers["ETag"] == etag


def test_last_modified_without_etag_revalidates_with_if_modified_since(
    settings: Settings, upstream: WebOriginals
) -> None:
    client = mounted(settings, upstream, source_ttl=0.2)
    first = client.get("/image/dated/photo.jpg?w=40")
    assert first.status_code == 200
    time.sleep(0.3)
    assert client.get("/image/dated/photo.jpg?w=40").headers["ETag"] == first.headers["ETag"]
    eventually(lambda: upstream.not_modified["/dated/photo.jpg"], lambda count: count == 1)
    assert upstream.gets["/dated/photo.jpg"] == 2 and upstream.not_modified["/dated/photo.jpg"] == 1


def test_an_s3_endpoint_that_hangs_is_one_attempt_within_the_timeout(
    settings: Settings, upstream: WebOriginals, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore retries by default: a hidden second attempt doubled the wait."""
    upstream.hanging = True
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": upstream.base.rstrip("/"),
    }.items():
        monkeypatch.setenv(name, value)
    source = parse_source("PROXY_SOURCE", f"s3/=s3://bucket/,={settings.image_root.as_uri()}")
    client = create_app(replace(settings, source=source, fetch_timeout=TIMEOUT)).test_client()
    response, took = timed(client, "/image/s3/photo.jpg?w=50")
    assert_public_error(response, 504, upstream)
    assert took < TIMEOUT + GRACE
    time.sleep(TIMEOUT)  # a retry, if any, would have been made by now
    assert sum(upstream.gets.values()) == 1


def test_workers_share_one_attempt_and_its_failure(
    settings: Settings, upstream: WebOriginals, tmp_path: Path
) -> None:
    """Under gunicorn: clients spread over two workers, one GET upstream, every answer in time."""
    env = {
        "PROXY_SOURCE": f"hang/={upstream.base}hang/,fail/={upstream.base}fail/",
        "PROXY_FETCH_TIMEOUT": str(TIMEOUT),
        "PROXY_CACHE_DIR": str(tmp_path / "cache"),
    }
    server = start_gunicorn(env, workers=2)
    try:

        def timed_request(path: str) -> tuple[int, bytes, float]:
            started = time.monotonic()
            status, _, body = server.request("GET", path)
            return status, body, time.monotonic() - started

        for mount, status in (("hang", 504), ("fail", 502)):
            paths = [f"/image/{mount}/photo.jpg?w={w}" for w in range(20, 44)]
            with ThreadPoolExecutor(len(paths)) as pool:
                answers = list(pool.map(timed_request, paths))
            assert {answer[0] for answer in answers} == {status}
            assert max(answer[2] for answer in answers) < TIMEOUT + GRACE
            assert b"127.0.0.1" not in b"".join(answer[1] for answer in answers)
            assert upstream.gets[f"/{mount}/photo.jpg"] == 1, server.log_text()
        assert "upstream fetch failed" in server.log_text()  # the details, for the operator
    finally:
        server.stop()


def test_the_copies_count_their_uses_and_fetches(settings: Settings, upstream: WebOriginals) -> None:
    """cache stats' sources block: a copy fetched once, then opened for each render."""
    client = mounted(settings, upstream)
    for width in (30, 40, 50):
        assert client.get(f"/image/img/photo.jpg?w={width}").status_code == 200
    time.sleep(1.2)  # each worker adds its counts to the shared totals within a second
    stats = VariantCache(settings.cache_dir / COPIES, settings.source_cache_size).stats()
    assert stats["renders"] == 1 and stats["hits"] >= 3 and stats["misses"] == 0
    assert stats["entries"] >= 2 and stats["bytes"] > len(upstream.files["photo.jpg"])

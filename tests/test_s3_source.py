"""s3:// mounts: a real gunicorn fetching from moto's S3 API server on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import pytest

from .support.images import decode, encode, photo, quadrants
from .support.servers import Server, eventually, start_gunicorn
from .support.upstreams import S3Server

pytestmark = pytest.mark.integration

BUCKET = "shop-images"
TTL = 1.0
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


@pytest.fixture
def s3() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3: S3Server) -> Any:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    client.put_object(
        Bucket=BUCKET,
        Key="products/42.jpg",
        Body=encode(photo(900, 600), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90),
    )
    return client


@pytest.fixture
def origin(s3: S3Server, bucket: Any, tmp_path: Path) -> Iterator[Callable[[float], Server]]:
    """gunicorn over the bucket and a local directory, trusting S3's versions for ``ttl`` seconds."""
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "here.png").write_bytes(encode(quadrants(40, 40), ".png"))
    servers: list[Server] = []

    def start(ttl: float) -> Server:
        env = {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": s3.endpoint,
            "PROXY_SOURCE": f"products/=s3://{BUCKET}/products/,={(tmp_path / 'local').as_uri()}",
            "PROXY_SOURCE_TTL": str(ttl),
            "PROXY_CACHE_DIR": str(tmp_path / "cache"),
        }
        servers.append(start_gunicorn(env, workers=2))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_many_sizes_of_one_original_are_one_get_upstream(
    origin: Callable[[float], Server], s3: S3Server
) -> None:
    server = origin(60)
    widths = list(range(100, 900, 50))
    with ThreadPoolExecutor(len(widths)) as pool:
        results = list(
            pool.map(lambda w: server.request("GET", f"/image/products/42.jpg?w={w}&fmt=png"), widths)
        )
    assert [status for status, _, _ in results] == [200] * len(widths)
    assert [decode(body).shape[1] for _, _, body in results] == widths
    etag = results[0][1]["etag"]
    assert server.request("GET", "/image/products/42.jpg?w=100&fmt=png", {"If-None-Match": etag})[0] == 304
    assert server.request("GET", "/image/products/42.jpg?w=100&fmt=png")[1]["x-cache"] == "HIT"
    assert s3.gets(BUCKET, "products/42.jpg") == 1, server.log_text()
    assert server.request("GET", "/image/here.png?w=20")[0] == 200  # the local mount beside it


@pytest.mark.slow
def test_replaced_then_deleted_objects_are_seen_after_the_ttl(
    origin: Callable[[float], Server], bucket: Any
) -> None:
    server = origin(TTL)
    status, first, _ = server.request("GET", "/image/products/42.jpg?w=60&fmt=png")
    assert status == 200
    bucket.put_object(Bucket=BUCKET, Key="products/42.jpg", Body=encode(quadrants(600, 400), ".png"))
    assert server.request("GET", "/image/products/42.jpg?w=60&fmt=png")[1]["etag"] == first["etag"]
    time.sleep(TTL + 0.2)
    # Past the TTL the known copy answers at once and S3 is asked off the request path, so the
    # replacement shows within a revalidation's time.
    status, changed, body = eventually(
        lambda: server.request("GET", "/image/products/42.jpg?w=60&fmt=png"),
        lambda answer: answer[1]["etag"] != first["etag"],
    )
    assert status == 200 and tuple(decode(body)[5, 5]) == (0, 0, 255)  # the replacement's red corner
    bucket.delete_object(Bucket=BUCKET, Key="products/42.jpg")
    time.sleep(TTL + 0.2)
    status, headers, _ = eventually(
        lambda: server.request("GET", "/image/products/42.jpg?w=60&fmt=png"), lambda answer: answer[0] == 404
    )
    assert headers["cache-control"] == "no-store"


@pytest.mark.slow
def test_known_copies_are_served_while_s3_is_down(origin: Callable[[float], Server], s3: S3Server) -> None:
    server = origin(TTL)
    assert server.request("GET", "/image/products/42.jpg?w=70")[0] == 200
    s3.stop()
    time.sleep(TTL + 0.2)
    status, _, body = server.request("GET", "/image/products/42.jpg?w=75")  # a new size, from the copy
    assert status == 200 and decode(body).shape[1] == 75
    status, headers, _ = server.request("GET", "/image/products/unknown.jpg?w=75")
    assert status == 502 and headers["cache-control"] == "no-store"

"""The shared result tier (proxy/results/): instances that share ``PROXY_RESULT_STORE`` render a
variant once between them, never answer a changed original with an old render, lose a purged
original's objects everywhere, answer nothing damaged, and never fail or wait long because of
the tier. Instances here are apps in this process over one image root, each with its own cache
directory, as a new instance or one restarted on an empty disk has; the tier is a real directory
(file://) or moto's S3 server (s3://), and its faults real sockets that hang or refuse."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from flask import Flask
from prometheus_client import REGISTRY

from proxy import create_app
from proxy.keys import original_tag
from proxy.origin import Origin
from proxy.results.tier import Breaker
from proxy.settings import Settings
from proxy.signing import sign

from .support.images import encode, photo
from .support.upstreams import S3Server

PHOTO = "/image/photo.jpg?w=120"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
BUCKET = "renders"

Instance = Callable[..., Flask]


def origin_of(app: Flask) -> Origin:
    origin: Origin = app.extensions["proxy"]
    return origin


def settle(app: Flask) -> None:
    """The renders' writes to the tier are done (they run off the request path)."""
    results = origin_of(app).results
    assert results is not None and results.flush(10)


def renders(app: Flask) -> int:
    return origin_of(app).cache.stats()["renders"]


def reads(outcome: str) -> float:
    return REGISTRY.get_sample_value("image_origin_result_reads_total", {"outcome": outcome}) or 0.0


def served_shared() -> float:
    return REGISTRY.get_sample_value("image_origin_cache_requests_total", {"outcome": "shared"}) or 0.0


@pytest.fixture
def instance(image_root: Path, tmp_path: Path) -> Instance:
    """``instance(name, store=..., **settings)``: an app over the shared image root, with a cache
    directory of its own (empty when first made)."""

    def make(name: str, store: str, **settings: Any) -> Flask:
        return create_app(
            Settings(
                image_root=image_root, cache_dir=tmp_path / f"cache-{name}", result_store=store, **settings
            )
        )

    return make


@pytest.fixture
def tier(tmp_path: Path) -> Path:
    return tmp_path / "tier"


def get(app: Flask, path: str = PHOTO) -> Any:
    with app.test_client() as client:
        return client.get(path)


def objects(tier: Path) -> list[Path]:
    return sorted(path for path in tier.rglob("*") if path.is_file() and not path.name.startswith("."))


# --- one render between instances --------------------------------------------------------------


def test_a_render_on_one_instance_is_a_shared_hit_on_another(instance: Instance, tier: Path) -> None:
    first, second = instance("a", tier.as_uri()), instance("b", tier.as_uri())
    rendered = get(first)
    assert rendered.status_code == 200 and rendered.headers["X-Cache"] == "MISS"
    settle(first)
    before, shared_before = reads("hit"), served_shared()

    answer = get(second)
    assert answer.status_code == 200 and answer.headers["X-Cache"] == "HIT-SHARED"
    assert answer.data == rendered.data and answer.headers["ETag"] == rendered.headers["ETag"]
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert cv2.imdecode(np.frombuffer(answer.data, np.uint8), cv2.IMREAD_COLOR).shape[1] == 120
    assert renders(second) == 0  # nothing rendered: the first instance's bytes
    assert (reads("hit"), served_shared()) == (before + 1, shared_before + 1)
    again = get(second)  # kept on this instance's disk: a plain hit from now on
    assert again.headers["X-Cache"] == "HIT" and again.data == rendered.data


def test_objects_are_laid_out_by_original_with_their_type_digest_and_tag(
    instance: Instance, tier: Path
) -> None:
    app = instance("a", tier.as_uri())
    answer = get(app)
    get(app, "/image/photo.jpg?w=60&fmt=png")
    get(app, "/image/quadrants.png?w=30")
    settle(app)
    tag = original_tag("photo.jpg")
    mine = sorted(path.name for path in (tier / tag).iterdir())
    assert len(mine) == 2 and answer.headers["ETag"].strip('"') in mine  # named by the variant: its ETag
    assert len(objects(tier)) == 3
    with open(tier / tag / answer.headers["ETag"].strip('"'), "rb") as file:
        head = json.loads(file.readline())
        body = file.read()
    assert body == answer.data and head["type"] == "image/jpeg"
    assert head["meta"]["tag"] == tag and len(head["meta"]["digest"]) == 64


def test_a_changed_original_is_never_answered_with_an_old_render(
    instance: Instance, tier: Path, image_root: Path
) -> None:
    first, second = instance("a", tier.as_uri()), instance("b", tier.as_uri())
    old = get(first)
    settle(first)
    changed = photo(600, 400)
    changed[:] = (0, 0, 255)  # red everywhere: nothing like the first photo
    (image_root / "photo.jpg").write_bytes(encode(changed, ".jpg"))
    os.utime(image_root / "photo.jpg", (time.time() + 5, time.time() + 5))

    answer = get(second)
    assert answer.headers["X-Cache"] == "MISS" and answer.headers["ETag"] != old.headers["ETag"]
    pixels = cv2.imdecode(np.frombuffer(answer.data, np.uint8), cv2.IMREAD_COLOR)
    assert abs(int(pixels[40, 60, 2]) - 255) < 8 and int(pixels[40, 60, 0]) < 8  # the new original: red


def test_a_new_secret_keeps_the_tier(instance: Instance, tier: Path) -> None:
    old, new = "an-old-secret-0123456789abcdef", "a-new-secret-0123456789abcdef0"
    first = instance("a", tier.as_uri(), secret=old)
    second = instance("b", tier.as_uri(), secret=new)
    rendered = get(first, sign(old, PHOTO))
    settle(first)
    assert get(second, sign(old, PHOTO)).status_code == 403  # the old secret is gone
    answer = get(second, sign(new, PHOTO))
    assert rendered.status_code == answer.status_code == 200
    assert answer.headers["X-Cache"] == "HIT-SHARED" and answer.data == rendered.data


# --- purges ---------------------------------------------------------------------------------------


def test_a_purge_removes_the_originals_objects_for_every_instance(instance: Instance, tier: Path) -> None:
    token = "purge-token-0123456789abcdef"
    first, second = instance("a", tier.as_uri()), instance("b", tier.as_uri(), purge_token=token)
    for path in (PHOTO, "/image/photo.jpg?w=60", "/image/quadrants.png?w=30"):
        get(first, path)
    settle(first)
    with second.test_client() as client:
        purged = client.open("/image/photo.jpg", method="PURGE", headers={"Authorization": f"Bearer {token}"})
    assert purged.status_code == 200 and purged.get_json()["purged"] >= 2
    assert not (tier / original_tag("photo.jpg")).exists()
    assert len(objects(tier)) == 1  # another original's object stays
    third = instance("c", tier.as_uri())
    assert get(third).headers["X-Cache"] == "MISS"


def test_the_cli_purge_removes_the_originals_objects(instance: Instance, tier: Path, cli: Any) -> None:
    app = instance("a", tier.as_uri())
    get(app)
    settle(app)
    ran = cli("cache", "purge", "photo.jpg", PROXY_RESULT_STORE=tier.as_uri())
    assert ran.returncode == 0 and "purged 1 entries" in ran.stdout
    assert not (tier / original_tag("photo.jpg")).exists()


def test_warm_writes_to_the_tier_before_it_exits(tier: Path, cli: Any) -> None:
    ran = cli("warm", "photo.jpg", "--sizes", "100,200", "--fmt", "webp", PROXY_RESULT_STORE=tier.as_uri())
    assert ran.returncode == 0, ran.stderr
    assert len(list((tier / original_tag("photo.jpg")).iterdir())) == 2


# --- integrity and expiry ------------------------------------------------------------------------


def _only_object(tier: Path) -> Path:
    (found,) = objects(tier)
    return found


@pytest.mark.parametrize("damage", ["flipped", "short", "another variant's", "garbled head"])
def test_a_damaged_object_is_a_miss_and_is_removed(instance: Instance, tier: Path, damage: str) -> None:
    first = instance("a", tier.as_uri())
    rendered = get(first)
    settle(first)
    path = _only_object(tier)
    data = path.read_bytes()
    head, _, body = data.partition(b"\n")
    if damage == "flipped":
        path.write_bytes(head + b"\n" + body[:500] + bytes([body[500] ^ 1]) + body[501:])
    elif damage == "short":
        path.write_bytes(head + b"\n" + body[: len(body) // 2])
    elif damage == "another variant's":
        other = instance("o", tier.as_uri())
        get(other, "/image/photo.jpg?w=60")
        settle(other)
        (moved,) = [p for p in objects(tier) if p != path]
        os.replace(moved, path)  # whole and sound, but named for another variant
    else:
        path.write_bytes(b"{not json\n" + body)
    before = reads("damaged")

    second = instance("b", tier.as_uri())
    answer = get(second)
    assert answer.status_code == 200 and answer.headers["X-Cache"] == "MISS"
    assert answer.data == rendered.data  # rendered again, exactly
    assert reads("damaged") == before + 1
    settle(second)  # the damaged object was removed, and the render written in its place
    assert path.read_bytes().partition(b"\n")[2] == data.partition(b"\n")[2]


def test_an_object_past_the_ttl_is_a_miss(instance: Instance, tier: Path) -> None:
    first = instance("a", tier.as_uri())
    get(first)
    settle(first)
    path = _only_object(tier)
    head, _, body = path.read_bytes().partition(b"\n")
    meta = json.loads(head)
    meta["meta"]["stored"] = str(int(time.time()) - 120)  # written two minutes ago
    path.write_bytes(json.dumps(meta).encode() + b"\n" + body)
    before = reads("expired")

    assert get(instance("b", tier.as_uri(), result_ttl=600)).headers["X-Cache"] == "HIT-SHARED"
    assert get(instance("c", tier.as_uri(), result_ttl=60)).headers["X-Cache"] == "MISS"
    assert reads("expired") == before + 1


def test_a_tier_that_cannot_be_written_costs_nothing(instance: Instance, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the tier's directory should be")
    app = instance("a", blocked.as_uri())

    def writes() -> dict[str, float]:
        return {
            outcome: REGISTRY.get_sample_value("image_origin_result_writes_total", {"outcome": outcome})
            or 0.0
            for outcome in ("stored", "error", "skipped")
        }

    before = writes()
    for path in (PHOTO, "/image/photo.jpg?w=60", "/image/photo.jpg?w=30"):
        answer = get(app, path)
        assert answer.status_code == 200 and answer.headers["X-Cache"] == "MISS"
        settle(app)
    after = writes()
    assert after["stored"] == before["stored"]
    # Reads and writes each failed three times in a row, after which the worker leaves each alone.
    assert (after["error"] - before["error"], after["skipped"] - before["skipped"]) == (3, 0)
    skipped = reads("skipped")
    assert get(app, "/image/photo.jpg?w=20").headers["X-Cache"] == "MISS"
    settle(app)
    assert writes()["skipped"] == after["skipped"] + 1 and reads("skipped") == skipped + 1
    assert get(app).headers["X-Cache"] == "HIT"


# --- S3, and a tier that fails -------------------------------------------------------------------


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": server.endpoint}.items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()


@pytest.fixture
def bucket(s3: S3Server) -> Any:
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.mark.integration
def test_s3_a_shared_hit_metadata_integrity_and_purge(instance: Instance, bucket: Any) -> None:
    store = f"s3://{BUCKET}/origin/"
    first, second = instance("a", store), instance("b", store, purge_token="purge-token-0123456789abcdef")
    rendered = get(first)
    get(first, "/image/quadrants.png?w=30")
    settle(first)
    tag = original_tag("photo.jpg")
    name = f"origin/{tag}/{rendered.headers['ETag'].strip(chr(34))}"
    head = bucket.head_object(Bucket=BUCKET, Key=name)
    assert head["ContentType"] == "image/jpeg" and head["Metadata"]["tag"] == tag
    assert len(head["Metadata"]["digest"]) == 64

    answer = get(second)
    assert answer.headers["X-Cache"] == "HIT-SHARED" and answer.data == rendered.data
    assert renders(second) == 0

    # A short object, its metadata intact: a miss, and removed.
    body = bucket.get_object(Bucket=BUCKET, Key=name)["Body"].read()
    bucket.put_object(
        Bucket=BUCKET, Key=name, Body=body[:100], ContentType="image/jpeg", Metadata=head["Metadata"]
    )
    third = instance("c", store)
    assert get(third).headers["X-Cache"] == "MISS"
    settle(third)
    assert bucket.get_object(Bucket=BUCKET, Key=name)["Body"].read() == rendered.data  # written again

    with second.test_client() as client:
        client.open(
            "/image/photo.jpg",
            method="PURGE",
            headers={"Authorization": "Bearer purge-token-0123456789abcdef"},
        )
    keys = [entry["Key"] for entry in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert len(keys) == 1 and original_tag("quadrants.png") in keys[0]


class Endpoint(threading.Thread):
    """An S3 endpoint on loopback that misbehaves: ``hang`` (accepts, never answers), ``trickle``
    (answers 200 and sends its body at 100 bytes a second) or ``refuse`` (answers every request
    403, as a bucket without the grant does). Counts connections."""

    def __init__(self, behaviour: str) -> None:
        super().__init__(daemon=True)
        self.behaviour = behaviour
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.held: list[socket.socket] = []

    def run(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.held.append(connection)  # closed by stop(), whatever it was sent
            if self.behaviour == "hang":
                continue
            connection.recv(65536)
            if self.behaviour == "trickle":
                threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()
                continue
            body = b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
            connection.sendall(
                b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            connection.close()

    def _trickle(self, connection: socket.socket) -> None:
        """An object's answer whose body comes at 100 bytes a second."""
        try:
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n"
                b"x-amz-meta-digest: 0\r\n\r\n"
            )
            for _ in range(100):
                connection.sendall(b"x" * 10)
                time.sleep(0.1)
        except OSError:
            pass
        finally:
            connection.close()

    def stop(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(), which close() alone does not
        self.listener.close()
        self.join(5)  # no connection accepted after this
        for connection in self.held:
            connection.close()


@pytest.fixture
def endpoint(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    server = Endpoint(request.param)
    server.start()
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": server.url}.items():
        monkeypatch.setenv(name, value)
    yield server
    server.stop()


@pytest.mark.integration
@pytest.mark.parametrize("endpoint", ["hang", "trickle", "refuse"], indirect=True)
def test_a_failing_tier_costs_a_short_wait_then_nothing(
    instance: Instance, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    timeout = 0.4
    app = instance("a", f"s3://{BUCKET}/origin/", result_timeout=timeout)
    results = origin_of(app).results
    assert results is not None
    results.backend.prepare()  # as gunicorn's post_fork has each worker do (prepare_after_fork)
    baseline = instance("plain", "")
    started = time.monotonic()
    plain = get(baseline, "/image/photo.jpg?w=99")
    render = time.monotonic() - started  # what a miss costs without a tier
    waits = []
    for width in range(100, 106):
        started = time.monotonic()
        answer = get(app, f"/image/photo.jpg?w={width}")
        waits.append(time.monotonic() - started - render)
        assert answer.status_code == 200 and answer.headers["X-Cache"] == "MISS"
        assert cv2.imdecode(np.frombuffer(answer.data, np.uint8), cv2.IMREAD_COLOR).shape[1] == width
    assert plain.status_code == 200
    assert max(waits) < timeout + 0.5  # at most the timeout, whatever the tier does
    assert max(waits[3:]) < 0.15  # after 3 failures in a row the worker leaves the tier alone
    connections = endpoint.connections
    get(app, "/image/photo.jpg?w=110")
    assert endpoint.connections == connections  # cooling down: not even asked
    warnings = [r for r in caplog.records if r.name.startswith("proxy.results") and r.levelname == "WARNING"]
    assert len(warnings) == 1  # one warning a minute, however many failures


def test_failures_at_the_same_moment_count_once_and_reads_rest_apart_from_writes() -> None:
    breaker = Breaker()
    started = time.monotonic()
    assert not any(breaker.failed(started) for _ in range(8))  # eight reads that timed out together
    assert not breaker.resting()
    assert not breaker.failed(time.monotonic())  # a second bad moment
    assert breaker.failed(time.monotonic()) and breaker.resting()  # a third: a rest begins
    other = Breaker()
    assert not other.resting()  # the writes' breaker knows nothing of the reads'

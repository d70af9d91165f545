"""http(s):// mounts against a real HTTP server on loopback, and the SSRF guard."""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy.errors import BlockedAddress
from proxy.settings import Settings, SettingsError, parse_source
from proxy.signing import sign
from proxy.sources.guard import checked_address, is_public

from .support.images import decode, encode, quadrants
from .support.servers import eventually
from .support.upstreams import WebOriginals


@pytest.fixture
def upstream(upstream: WebOriginals) -> WebOriginals:
    """conftest.py's, with a file that is no image."""
    upstream.files["text.jpg"] = b"not an image at all" * 10
    return upstream


def mounted(settings: Settings, upstream: WebOriginals, **changes: object) -> FlaskClient:
    base = upstream.base
    kinds = ("slow", "lying", "endless", "fail")
    mounts = [f"web/={base}img/", *(f"{kind}/={base}{kind}/" for kind in kinds)]
    mounts += [f"hop/={base}redirect/2/", f"far/={base}redirect/4/"]
    mounts += [
        f"away/={base}away/localhost:{upstream.server_address[1]}/",
        f"metadata/={base}away/169.254.169.254/",
        f"loopback/={base}away/127.0.0.1:9/",  # the same address, another port: another origin
        f"={settings.image_root.as_uri()}",
    ]
    source = parse_source("PROXY_SOURCE", ",".join(mounts))
    return create_app(replace(settings, source=source, **changes)).test_client()  # type: ignore[arg-type]


def test_many_sizes_fetch_the_original_once(settings: Settings, upstream: WebOriginals) -> None:
    client = mounted(settings, upstream)
    for width in (100, 200, 300, 400):
        response = client.get(f"/image/web/photo.jpg?w={width}&fmt=png")
        assert response.status_code == 200, response.get_json()
        assert decode(response.data).shape[:2] == (round(width * 2 / 3), width)
    etag = response.headers["ETag"]
    assert (
        client.get("/image/web/photo.jpg?w=400&fmt=png", headers={"If-None-Match": etag}).status_code == 304
    )
    assert client.get("/image/web/photo.jpg?w=400&fmt=png").headers["X-Cache"] == "HIT"
    assert upstream.gets["/img/photo.jpg"] == 1
    assert client.get("/image/photo.jpg?w=50").status_code == 200  # the file mount beside it


def test_a_changed_original_is_seen_after_the_ttl_by_a_conditional_get(
    settings: Settings, upstream: WebOriginals
) -> None:
    client = mounted(settings, upstream, source_ttl=0.3)
    first = client.get("/image/web/photo.jpg?w=60&fmt=png")
    time.sleep(0.4)
    again = client.get("/image/web/photo.jpg?w=60&fmt=png")  # stale: answered, revalidated behind it
    assert again.headers["ETag"] == first.headers["ETag"] and again.headers["X-Cache"] == "HIT"
    eventually(lambda: upstream.not_modified["/img/photo.jpg"], lambda count: count == 1)
    assert upstream.gets["/img/photo.jpg"] == 2  # revalidated, answered 304: not downloaded again
    assert upstream.not_modified["/img/photo.jpg"] == 1
    upstream.files["photo.jpg"] = encode(quadrants(600, 400), ".png")
    assert client.get("/image/web/photo.jpg?w=60&fmt=png").headers["ETag"] == first.headers["ETag"]
    time.sleep(0.4)
    changed = eventually(
        lambda: client.get("/image/web/photo.jpg?w=60&fmt=png"),
        lambda answer: answer.headers["ETag"] != first.headers["ETag"],
    )
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert tuple(decode(changed.data)[5, 5]) == (0, 0, 255)  # the quadrants' red corner


def test_a_missing_original_is_404_and_remembered(settings: Settings, upstream: WebOriginals) -> None:
    client = mounted(settings, upstream)
    for _ in range(3):
        response = client.get("/image/web/nope.jpg?w=10")
        assert response.status_code == 404 and response.headers["Cache-Control"] == "no-store"
    assert upstream.gets["/img/nope.jpg"] == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/image/fail/photo.jpg?w=10", 502),
        ("/image/slow/photo.jpg?w=10", 504),
        ("/image/lying/photo.jpg?w=10", 502),
        ("/image/endless/photo.jpg?w=10", 413),
        ("/image/web/text.jpg?w=10", 415),
        ("/image/far/photo.jpg?w=10", 502),  # four redirects: one too many
        ("/image/web/../photo.jpg", 404),
        ("/image/web/.hidden.jpg", 404),
    ],
)
def test_upstream_failures_are_clear_errors(
    settings: Settings, upstream: WebOriginals, path: str, status: int
) -> None:
    client = mounted(settings, upstream, fetch_timeout=0.5, max_source_bytes=1_000_000)
    started = time.monotonic()
    response = client.get(path)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["status"] == status
    assert response.headers["Cache-Control"] == "no-store" and "ETag" not in response.headers
    assert time.monotonic() - started < 1.5  # the slow one is cut at the fetch timeout


def test_a_known_copy_is_served_while_upstream_fails(settings: Settings, upstream: WebOriginals) -> None:
    client = mounted(settings, upstream, source_ttl=0.2)
    etag = client.get("/image/web/photo.jpg?w=80").headers["ETag"]
    upstream.broken = True
    time.sleep(0.3)
    stale = client.get("/image/web/photo.jpg?w=90")  # past the TTL, a new size: from the local copy
    assert stale.status_code == 200 and decode(stale.data).shape[1] == 90
    assert client.get("/image/web/photo.jpg?w=80").headers["ETag"] == etag
    assert client.get("/image/web/other.jpg?w=80").status_code == 502  # nothing known of it
    upstream.broken = False


def test_redirects_are_followed_and_checked(settings: Settings, upstream: WebOriginals) -> None:
    client = mounted(settings, upstream)
    assert client.get("/image/hop/photo.jpg?w=10").status_code == 200
    assert upstream.gets["/redirect/0/photo.jpg"] == 1
    for mount in ("away", "metadata", "loopback"):  # redirects to internal addresses
        refused = client.get(f"/image/{mount}/photo.jpg?w=10")
        assert refused.status_code == 403 and "may not be fetched" in refused.get_json()["error"]
    assert upstream.gets["/img/photo.jpg"] == 1  # the hop to "localhost" was never made
    allowed = mounted(settings, upstream, allow_private_addresses=True)
    assert allowed.get("/image/away/photo.jpg?w=10").status_code == 200


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "224.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_a_name_resolving_to_loopback_is_refused_before_connecting() -> None:
    with pytest.raises(BlockedAddress):
        checked_address("localhost", 80, allow_private=False)
    assert checked_address("localhost", 80, allow_private=True) in ("127.0.0.1", "::1")


def test_source_mounts_are_parsed_and_checked(tmp_path: Path) -> None:
    mounts = parse_source(
        "PROXY_SOURCE",
        f"products/=s3://shop-images/products/,legacy/=https://old.example.com/img,={tmp_path.as_uri()}",
    )
    assert [(m.prefix, m.scheme, m.location) for m in mounts] == [
        ("products/", "s3", "shop-images/products/"),
        ("legacy/", "https", "https://old.example.com/img/"),
        ("", "file", str(tmp_path)),
    ]
    settings = Settings(source=mounts)
    assert [m.prefix for m in settings.mounts] == ["products/", "legacy/", ""]  # longest first


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("ftp://host/x/", "expected a file://"),
        ("products/=s3:///no-bucket", "no valid bucket"),
        ("products/=s3://", "no valid bucket"),
        ("a/=https://x/,a/=https://y/", "given twice"),
        ("/abs/=https://x/", "must be relative"),
        ("noslash=https://x/", "must be relative"),
        ("https:///path-only", "no host"),
        (",", "no source"),
    ],
)
def test_bad_sources_are_refused_naming_the_variable(raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"PROXY_SOURCE.*{message}"):
        Settings.from_env({"PROXY_SOURCE": raw})


def url_path(url: str, query: str = "w=40") -> str:
    return f"/url/{base64.urlsafe_b64encode(url.encode()).rstrip(b'=').decode()}?{query}"


def test_url_sources_are_off_unless_hosts_are_allowed(settings: Settings, upstream: WebOriginals) -> None:
    client = create_app(settings).test_client()
    assert client.get(url_path(f"{upstream.base}img/photo.jpg")).status_code == 404
    assert sum(upstream.gets.values()) == 0


def test_url_sources_fetch_once_and_keep_every_rule(settings: Settings, upstream: WebOriginals) -> None:
    client = create_app(
        replace(settings, url_hosts=("127.0.0.1",), allow_private_addresses=True)
    ).test_client()
    for width in (40, 50, 60):
        response = client.get(url_path(f"{upstream.base}img/photo.jpg", f"w={width}"))
        assert response.status_code == 200 and decode(response.data).shape[1] == width
    assert upstream.gets["/img/photo.jpg"] == 1
    etag = response.headers["ETag"]
    again = client.get(url_path(f"{upstream.base}img/photo.jpg", "w=60"), headers={"If-None-Match": etag})
    assert again.status_code == 304
    away = client.get(url_path(f"{upstream.base}away/localhost:{upstream.server_address[1]}/photo.jpg"))
    assert away.status_code == 403 and "PROXY_URL_HOSTS" in away.get_json()["error"]  # a hop to another host


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/img/photo.jpg",
        "http://10.0.0.1/a.jpg",
        "http://192.168.0.10/a.jpg",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.1.1/a.jpg",
        "http://0.0.0.0/a.jpg",
        "http://[::1]/a.jpg",
        "http://[::ffff:127.0.0.1]/a.jpg",
        "http://[fd00::1]/a.jpg",
        "http://[64:ff9b::a00:1]/a.jpg",
        "http://localhost/a.jpg",
    ],
)
def test_url_sources_refuse_internal_addresses_without_connecting(settings: Settings, url: str) -> None:
    client = create_app(replace(settings, url_hosts=("*",))).test_client()
    started = time.monotonic()
    response = client.get(url_path(url))
    assert response.status_code == 403 and response.headers["Cache-Control"] == "no-store"
    assert time.monotonic() - started < 0.5  # refused on the address, not after a connection attempt


@pytest.mark.parametrize(
    ("encoded", "status"),
    [
        ("not*base64", 400),
        (base64.urlsafe_b64encode(b"file:///etc/passwd").decode().rstrip("="), 400),
        (base64.urlsafe_b64encode(b"http:///no-host").decode().rstrip("="), 400),
        (base64.urlsafe_b64encode(b"https://example.org/a.jpg").decode().rstrip("="), 403),  # not allowed
    ],
)
def test_bad_url_ids_are_clear_errors(settings: Settings, encoded: str, status: int) -> None:
    client = create_app(replace(settings, url_hosts=("images.example.com",))).test_client()
    response = client.get(f"/url/{encoded}?w=10")
    assert response.status_code == status
    if status == 400:
        assert response.get_json()["parameter"] == "url"


def test_url_sources_are_signed_like_images(settings: Settings, upstream: WebOriginals) -> None:
    secret = "a-secret-of-sixteen-bytes"
    app = create_app(replace(settings, url_hosts=("*",), allow_private_addresses=True, secret=secret))
    client = app.test_client()
    path = url_path(f"{upstream.base}img/photo.jpg")
    assert client.get(path).status_code == 403
    assert sum(upstream.gets.values()) == 0  # nothing fetched for an unsigned request
    assert client.get(sign(secret, path)).status_code == 200


def test_the_connection_goes_to_the_address_checked(
    settings: Settings, upstream: WebOriginals, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a name checked once must not be looked up again to connect elsewhere."""
    real = socket.getaddrinfo
    lookups: list[str] = []
    answers = iter(["127.0.0.1", "10.9.9.9"])  # the second answer must never be used

    def resolver(host: str, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        if host != "images.test":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    app = create_app(replace(settings, url_hosts=("images.test",), allow_private_addresses=True))
    response = app.test_client().get(
        url_path(f"http://images.test:{upstream.server_address[1]}/img/photo.jpg")
    )
    assert response.status_code == 200
    assert lookups == ["images.test"]  # resolved once, by the guard
    assert upstream.gets["/img/photo.jpg"] == 1  # and connected to the address it checked
    assert upstream.hosts == [f"images.test:{upstream.server_address[1]}"]  # with the name as Host

"""Signed URLs and presets: what a deployer turns on to close the unbounded-variants attack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import replace
from types import MappingProxyType

import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy.settings import Settings, SettingsError, parse_presets
from proxy.signing import sign, signature

from .support.cli import Cli
from .support.images import decode
from .support.servers import REPO, start_gunicorn

SECRET, OLD = "correct horse battery staple", "tr0ub4dor&3 of last year"


def reference_sig(secret: str, message: str) -> str:
    """The documented scheme, written independently of proxy.signing."""
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@pytest.fixture
def signed(settings: Settings) -> FlaskClient:
    return create_app(replace(settings, secret=SECRET, secret_previous=OLD)).test_client()


def test_sign_matches_the_documented_scheme() -> None:
    url = sign(SECRET, "/image/photo.jpg?w=300&fmt=webp")
    assert url == "/image/photo.jpg?w=300&fmt=webp&sig=" + reference_sig(
        SECRET, "/image/photo.jpg?w=300&fmt=webp"
    )
    assert sign(SECRET, "/image/photo.jpg") == "/image/photo.jpg?sig=" + reference_sig(
        SECRET, "/image/photo.jpg"
    )
    assert "=" not in signature(SECRET, "x") and "+" not in signature(SECRET, "x")


def test_signed_urls_are_served(signed: FlaskClient) -> None:
    for url in ("/image/photo.jpg?w=120", "/image/photo.jpg", "/image/nested/deep.webp?h=30&fmt=png"):
        response = signed.get(sign(SECRET, url))
        assert response.status_code == 200, url
    # the signature may sit anywhere in the query; the rest keeps its order
    message = "/image/photo.jpg?w=120&fmt=jpeg"
    assert (
        signed.get(f"/image/photo.jpg?sig={reference_sig(SECRET, message)}&w=120&fmt=jpeg").status_code == 200
    )


def test_the_previous_secret_still_works_while_rotating(signed: FlaskClient) -> None:
    assert signed.get(sign(OLD, "/image/photo.jpg?w=50")).status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/image/photo.jpg?w=120",  # unsigned
        "/image/photo.jpg?w=120&sig=",  # empty
        "/image/photo.jpg?w=120&sig=AAAA",  # forged
        "SIGNED_TRUNCATED",
        "SIGNED_OTHER_SECRET",
        "SIGNED_TAMPERED",
        "SIGNED_REORDERED",
        "SIGNED_TWICE",
        "/image/missing.jpg",  # an unsigned request cannot tell 404...
        "/image/photo.jpg?w=abc",  # ...from 400...
        "/image/../../etc/passwd",  # ...or probe the file system
    ],
)
def test_bad_or_missing_signatures_are_403_before_anything_else(signed: FlaskClient, url: str) -> None:
    good = sign(SECRET, "/image/photo.jpg?w=120&fmt=webp")
    url = {
        "SIGNED_TRUNCATED": good[:-3],
        "SIGNED_OTHER_SECRET": sign("guess", "/image/photo.jpg?w=120&fmt=webp"),
        "SIGNED_TAMPERED": good.replace("w=120", "w=121"),
        "SIGNED_REORDERED": "/image/photo.jpg?fmt=webp&w=120&" + good.split("&")[-1],
        "SIGNED_TWICE": good + "&" + good.split("&")[-1],
    }.get(url, url)
    response = signed.get(url)
    assert response.status_code == 403
    assert response.get_json()["error"] == "missing or invalid signature"
    assert response.headers["Cache-Control"] == "no-store"


def test_signed_but_bad_requests_get_their_real_status(signed: FlaskClient) -> None:
    assert signed.get(sign(SECRET, "/image/missing.jpg")).status_code == 404
    assert signed.get(sign(SECRET, "/image/photo.jpg?w=abc")).status_code == 400


def test_without_a_secret_sig_is_ignored(client: FlaskClient) -> None:
    assert client.get("/image/photo.jpg?w=30&sig=whatever").status_code == 200


@pytest.mark.integration
def test_percent_encoding_is_signed_as_sent_through_gunicorn(tmp_path: os.PathLike[str]) -> None:
    env = {
        "PROXY_IMAGE_ROOT": str(REPO / "samples"),
        "PROXY_CACHE_DIR": str(tmp_path),
        "PROXY_SECRET": SECRET,
    }
    server = start_gunicorn(env, workers=1)
    try:
        as_sent = "/image/rocket.jpg?w=%31%30%30&bg=fff"  # w=100, percent-encoded
        status, _, body = server.request("GET", sign(SECRET, as_sent))
        assert status == 200 and decode(body).shape[1] == 100
        decoded_signature = sign(SECRET, "/image/rocket.jpg?w=100&bg=fff").rsplit("sig=", 1)[1]
        status, _, _ = server.request("GET", f"{as_sent}&sig={decoded_signature}")
        assert status == 403  # a signature over the decoded form does not match what was sent
    finally:
        server.stop()


def test_cli_sign(settings: Settings, cli: Cli) -> None:
    result = cli("sign", "/image/photo.jpg?w=300", PROXY_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url == sign(SECRET, "/image/photo.jpg?w=300")
    signed = create_app(replace(settings, secret=SECRET)).test_client()
    assert signed.get(url).status_code == 200
    unset = cli("sign", "/x")
    assert unset.returncode == 2 and "PROXY_SECRET" in unset.stderr
    for wrong in ("http://img.example.com/image/photo.jpg?w=300", "image/photo.jpg?w=300"):
        refused = cli("sign", wrong, PROXY_SECRET=SECRET)
        assert refused.returncode == 2 and "/image/" in refused.stderr and refused.stdout == "", wrong


PRESETS = "thumb=w:40,h:40,fit:cover,fmt:webp;hero=w:300,q:75"


def with_presets(settings: Settings, only: bool = False) -> FlaskClient:
    presets = parse_presets("PROXY_PRESETS", PRESETS)
    return create_app(replace(settings, presets=presets, presets_only=only)).test_client()


def test_presets(settings: Settings) -> None:
    client = with_presets(settings)
    thumb = client.get("/image/photo.jpg?preset=thumb")
    assert thumb.status_code == 200 and thumb.mimetype == "image/webp"
    assert decode(thumb.data).shape[:2] == (40, 40)
    explicit = client.get("/image/photo.jpg?w=40&h=40&fit=cover&fmt=webp")
    assert explicit.headers["ETag"] == thumb.headers["ETag"]  # one variant, however it is asked for
    overridden = client.get("/image/photo.jpg?preset=thumb&fmt=png")  # explicit parameters win
    assert overridden.mimetype == "image/png" and decode(overridden.data).shape[:2] == (40, 40)
    response = client.get("/image/photo.jpg?preset=nope")
    assert response.status_code == 400 and response.get_json()["parameter"] == "preset"


def test_presets_only_refuses_everything_else(settings: Settings) -> None:
    client = with_presets(settings, only=True)
    assert decode(client.get("/image/photo.jpg?preset=hero").data).shape[:2] == (200, 300)
    for query, culprit in [
        ("w=100", "w"),
        ("preset=thumb&w=100", "w"),
        ("w=100&fit=cover", "w"),  # the first one sent, not the first in the alphabet
        ("", "preset"),
        ("preset=x", "preset"),
    ]:
        response = client.get(f"/image/photo.jpg?{query}")
        assert response.status_code == 400, query
        assert response.get_json()["parameter"] == culprit


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("thumb", "key:value"),
        ("thumb=w", "key:value"),
        ("Thumb!=w:1", "preset name"),
        ("a=w:1;a=w:2", "preset name"),
        ("a=w:0", "preset 'a'"),
        ("a=size:10", "preset 'a'"),
        ("a=preset:b", "may not set"),
    ],
)
def test_bad_presets_fail_at_startup(settings: Settings, raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match="PROXY_PRESETS") as caught:
        create_app(replace(settings, presets=parse_presets("PROXY_PRESETS", raw)))
    assert message in str(caught.value)


def test_presets_only_needs_presets(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="PROXY_PRESETS_ONLY"):
        replace(settings, presets=MappingProxyType({}), presets_only=True)

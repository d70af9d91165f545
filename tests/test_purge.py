"""Purging one original: cache tags on responses, PURGE and its token, what a purge drops."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy.cache import VariantCache
from proxy.formats import FORMATS
from proxy.metrics import PURGES
from proxy.pipeline import Rendered
from proxy.purge import mount_tag, original_tag, tag_headers, tags_for
from proxy.settings import Settings, SettingsError, parse_source

from .support.images import decode, encode, photo, quadrants
from .support.upstreams import WebOriginals

TOKEN = "s3cret-purge-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VARIANTS = ["w=100", "w=200", "w=300&fmt=webp", "w=120&h=120&fit=cover&fmt=png", "w=80&fmt=auto"]


@pytest.fixture
def purging(settings: Settings) -> FlaskClient:
    return create_app(replace(settings, purge_token=TOKEN, memory_cache_size=4 << 20)).test_client()


def test_a_tag_is_short_stable_and_header_safe() -> None:
    for image_id in ("photo.jpg", 'a b,c;d"e.jpg', "ünïcode/naïve.png", "x" * 1000):
        tag = original_tag(image_id)
        assert tag == original_tag(image_id) and tag.startswith("o-") and len(tag) == 18
        assert all(c in "0123456789abcdef" for c in tag[2:])
    assert original_tag("a.jpg") != original_tag("b.jpg")
    assert tags_for("products/a.jpg", ["products/", ""]) == (
        original_tag("products/a.jpg"),
        mount_tag("products/"),
    )
    assert tags_for("a.jpg", ["products/", ""]) == (original_tag("a.jpg"),)
    headers = tag_headers(["o-1", "m-2"], ["Surrogate-Key", "Cache-Tag", "Edge-Cache-Tag"])
    assert headers == {"Surrogate-Key": "o-1 m-2", "Cache-Tag": "o-1,m-2", "Edge-Cache-Tag": "o-1,m-2"}


def test_image_responses_and_304s_carry_the_tags(client: FlaskClient) -> None:
    tag = original_tag("photo.jpg")
    response = client.get("/image/photo.jpg?w=100")
    assert response.headers["Surrogate-Key"] == tag and response.headers["Cache-Tag"] == tag
    again = client.get("/image/photo.jpg?w=100", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Surrogate-Key"] == tag


def test_tag_headers_are_configurable(settings: Settings) -> None:
    known = {"Surrogate-Key", "Cache-Tag", "Edge-Cache-Tag"}
    for raw, expected in (("Edge-Cache-Tag", {"Edge-Cache-Tag"}), ("none", set())):
        env = {"PROXY_IMAGE_ROOT": str(settings.image_root), "PROXY_TAG_HEADERS": raw}
        client = create_app(replace(settings, tag_headers=Settings.from_env(env).tag_headers)).test_client()
        headers = client.get("/image/photo.jpg?w=50").headers
        assert {name for name in known if name in headers} == expected, raw
    with pytest.raises(SettingsError, match="PROXY_TAG_HEADERS"):
        Settings.from_env({"PROXY_IMAGE_ROOT": str(settings.image_root), "PROXY_TAG_HEADERS": "Bad Header"})


def test_a_mount_prefix_gets_a_tag_of_its_own(settings: Settings, image_root: Path) -> None:
    source = parse_source("PROXY_SOURCE", f"shop/={image_root.as_uri()},={image_root.as_uri()}")
    client = create_app(replace(settings, source=source)).test_client()
    keys = client.get("/image/shop/photo.jpg?w=50").headers["Surrogate-Key"].split()
    assert keys == [original_tag("shop/photo.jpg"), mount_tag("shop/")]
    assert client.get("/image/photo.jpg?w=50").headers["Surrogate-Key"] == original_tag("photo.jpg")


def test_purge_is_off_without_a_token(client: FlaskClient) -> None:
    response = client.open("/image/photo.jpg", method="PURGE", headers=AUTH)
    assert response.status_code == 405 and "PURGE" not in response.headers["Allow"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 403),
    ],
)
def test_purge_needs_the_token(purging: FlaskClient, headers: dict[str, str], status: int) -> None:
    purging.get("/image/photo.jpg?w=100")
    response = purging.open("/image/photo.jpg", method="PURGE", headers=headers)
    assert response.status_code == status and response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["status"] == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert purging.get("/image/photo.jpg?w=100").headers["X-Cache"] == "HIT"  # nothing was dropped


def test_a_purge_drops_every_variant_and_the_next_request_renders_afresh(purging: FlaskClient) -> None:
    first = {
        query: purging.get(f"/image/photo.jpg?{query}", headers={"Accept": "image/webp"})
        for query in VARIANTS
    }
    assert all(r.status_code == 200 for r in first.values())
    assert all(
        purging.get(f"/image/photo.jpg?{q}", headers={"Accept": "image/webp"}).headers["X-Cache"] == "HIT"
        for q in VARIANTS
    )
    purging.get("/image/quadrants.png?w=50")  # another original: untouched
    before = PURGES._value.get()
    response = purging.open("/image/photo.jpg", method="PURGE", headers=AUTH)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "id": "photo.jpg",
        "tag": original_tag("photo.jpg"),
        "purged": len(VARIANTS),
    }
    assert response.headers["Surrogate-Key"] == original_tag("photo.jpg")  # for a front to purge by
    assert PURGES._value.get() == before + 1
    for query, earlier in first.items():
        again = purging.get(f"/image/photo.jpg?{query}", headers={"Accept": "image/webp"})
        assert again.headers["X-Cache"] == "MISS", query  # not from disk, not from memory
        assert again.headers["ETag"] == earlier.headers["ETag"] and again.data == earlier.data  # same bytes
    assert purging.get("/image/quadrants.png?w=50").headers["X-Cache"] == "HIT"


def test_a_deleted_original_is_404_after_a_purge(purging: FlaskClient, image_root: Path) -> None:
    assert purging.get("/image/nested/deep.webp?w=50").status_code == 200
    (image_root / "nested" / "deep.webp").unlink()
    assert purging.open("/image/nested/deep.webp", method="PURGE", headers=AUTH).get_json()["purged"] == 1
    assert purging.get("/image/nested/deep.webp?w=50").status_code == 404


def test_purging_an_unknown_or_escaping_id(purging: FlaskClient) -> None:
    unknown = purging.open("/image/never-seen.jpg", method="PURGE", headers=AUTH)
    assert unknown.status_code == 200 and unknown.get_json()["purged"] == 0
    assert purging.open("/image/../secrets.jpg", method="PURGE", headers=AUTH).status_code == 404


def test_a_short_token_refuses_to_boot(settings: Settings) -> None:
    for token in ("short", " " * 20, "x" * 15):
        with pytest.raises(SettingsError, match="PROXY_PURGE_TOKEN"):
            replace(settings, purge_token=token)


def test_other_workers_forget_purged_variants_within_a_second(tmp_path: Path) -> None:
    """Two caches on one directory, as two workers: the purge by one empties the other's memory."""
    one = VariantCache(tmp_path / "c", 16 << 20, memory=1 << 20)
    two = VariantCache(tmp_path / "c", 16 << 20, memory=1 << 20)
    data = encode(photo(64, 48), ".png")
    one.put("k", Rendered(data, FORMATS["png"]), tag="o-1")
    assert two.get("k") is not None  # now in two's memory too
    assert one.purge("o-1") == 1
    deadline = time.monotonic() + 1.0
    while two.get("k") is not None:
        assert time.monotonic() < deadline, "still served from the other worker's memory"
        time.sleep(0.05)
    one.close()
    two.close()


def test_a_remote_original_is_asked_for_again_at_once(settings: Settings, upstream: WebOriginals) -> None:
    """Within PROXY_SOURCE_TTL a replaced original would still be the old version; after a purge its
    new ETag is served at once, and a deleted one is a 404."""
    source = parse_source("PROXY_SOURCE", f"web/={upstream.base}img/")
    client = create_app(replace(settings, source=source, source_ttl=3600, purge_token=TOKEN)).test_client()
    first = client.get("/image/web/photo.jpg?w=60&fmt=png")
    upstream.files["photo.jpg"] = encode(quadrants(600, 400), ".png")
    assert client.get("/image/web/photo.jpg?w=60&fmt=png").headers["ETag"] == first.headers["ETag"]  # TTL
    purged = client.open("/image/web/photo.jpg", method="PURGE", headers=AUTH).get_json()["purged"]
    assert purged == 2  # the variant and the local copy of the original
    changed = client.get("/image/web/photo.jpg?w=60&fmt=png")
    assert changed.headers["ETag"] != first.headers["ETag"] and tuple(decode(changed.data)[5, 5]) == (
        0,
        0,
        255,
    )
    del upstream.files["photo.jpg"]
    assert client.get("/image/web/photo.jpg?w=60&fmt=png").status_code == 200  # still within the TTL
    client.open("/image/web/photo.jpg", method="PURGE", headers=AUTH)
    assert client.get("/image/web/photo.jpg?w=60&fmt=png").status_code == 404

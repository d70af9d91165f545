"""fmt=best: every format the client takes (AVIF, WebP, and JPEG, or PNG for what declares
alpha) is encoded and the smallest is served; one variant per Accept class, Vary: Accept."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from proxy.formats import BEST, FORMATS, resolve
from proxy.probe import Kind

from .support.images import decode

MODERN = "image/avif,image/webp,image/*"


def sizes(client: FlaskClient, image: str, formats: tuple[str, ...]) -> dict[str, int]:
    return {fmt: len(client.get(f"/image/{image}?w=200&fmt={fmt}").data) for fmt in formats}


@pytest.mark.parametrize(("image", "fallback"), [("photo.jpg", "jpeg"), ("alpha.png", "png")])
def test_the_smallest_of_what_the_client_takes_is_served(
    client: FlaskClient, image: str, fallback: str
) -> None:
    tried = tuple(name for name in ("avif", "webp") if name in FORMATS) + (fallback,)
    expected = min(sizes(client, image, tried).items(), key=lambda item: item[1])
    answer = client.get(f"/image/{image}?w=200&fmt=best", headers={"Accept": MODERN})
    assert answer.status_code == 200 and answer.headers["Vary"] == "Accept"
    assert answer.headers["Content-Type"] == FORMATS[expected[0]].mime and len(answer.data) == expected[1]
    assert decode(answer.data).shape[1] == 200


def test_a_client_that_takes_only_jpeg_gets_the_jpeg_variant(client: FlaskClient) -> None:
    best = client.get("/image/photo.jpg?w=200&fmt=best", headers={"Accept": "image/jpeg,*/*"})
    jpeg = client.get("/image/photo.jpg?w=200&fmt=jpeg")
    assert best.headers["Content-Type"] == "image/jpeg" and best.headers["ETag"] == jpeg.headers["ETag"]


def test_one_variant_per_accept_class(client: FlaskClient) -> None:
    first = client.get("/image/photo.jpg?w=150&fmt=best", headers={"Accept": "image/webp,*/*"})
    second = client.get("/image/photo.jpg?w=150&fmt=best", headers={"Accept": "image/webp,image/png,*/*"})
    modern = client.get("/image/photo.jpg?w=150&fmt=best", headers={"Accept": MODERN})
    assert first.headers["ETag"] == second.headers["ETag"] and second.headers["X-Cache"] == "HIT"
    assert modern.headers["ETag"] != first.headers["ETag"] or "avif" not in FORMATS


def test_resolve_names_what_is_tried() -> None:
    photo, cutout, animated = Kind("jpeg", False, False), Kind("png", False, True), Kind("gif", True, False)
    assert resolve(BEST + "avif,webp", photo) == "best:avif,webp,jpeg"
    assert resolve(BEST + "webp", cutout) == "best:webp,png"
    assert resolve(BEST, photo) == "jpeg"  # nothing but JPEG taken: the JPEG variant itself
    assert resolve(BEST + "avif,webp", animated) == "avif"  # an animation is not encoded thrice
    assert resolve(BEST + "avif,webp", animated, frame=0) == "best:avif,webp,jpeg"

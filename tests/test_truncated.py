"""An original that ends before its image does is a 415, whatever its format, however it is
asked for, and stays one: nothing of it is rendered or cached (probe._ENDS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from proxy import create_app
from proxy.app import variant_key
from proxy.settings import Settings, parse_source

from .support.images import CUTS, cut, decode, encode, originals, photo, with_exif_thumbnail
from .support.upstreams import web_originals

QUERIES = ["w=40", "w=40&fmt=png"]  # the format named by the header's kind, and rendered straight away


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every original whole, and cut at every point."""
    root = tmp_path_factory.mktemp("truncated") / "images"
    root.mkdir()
    for name, data in originals().items():
        (root / name).write_bytes(data)
        for where in CUTS:
            (root / f"cut-{where}-{name}").write_bytes(cut(data, where))
    return root


@pytest.fixture(scope="module")
def workers(root: Path) -> tuple[Flask, Flask]:
    """Two apps on one cache, as two gunicorn workers are."""
    settings = Settings(image_root=root, cache_dir=root.parent / "cache", max_age=3600)
    return create_app(settings), create_app(settings)


def assert_refused(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 415, url
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["status"] == 415
    assert response.headers["X-Error"] == body["error"]
    assert "truncated" in body["error"] or "malformed TIFF" in body["error"]  # OpenCV's TIFF: directory last
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("where", CUTS)
@pytest.mark.parametrize("name", sorted(originals()))
def test_a_cut_original_is_refused_and_stays_refused(
    workers: tuple[Flask, Flask], name: str, where: str
) -> None:
    first, second = workers
    image_id = f"cut-{where}-{name}"
    client = first.test_client()
    for query in QUERIES:
        assert_refused(client, f"/image/{image_id}?{query}")
        assert_refused(client, f"/image/{image_id}?{query}")  # the refusal is remembered, not an image
    origin = first.extensions["proxy"]
    source = origin.store.resolve(image_id)
    assert origin.cache.get(variant_key(source, origin.parse("w=40&fmt=png"), "png")) is None
    assert_refused(second.test_client(), f"/image/{image_id}?w=40")  # the kind read from the shared cache


@pytest.mark.parametrize("name", sorted(originals()))
def test_the_same_original_whole_is_rendered(workers: tuple[Flask, Flask], name: str) -> None:
    response = workers[0].test_client().get(f"/image/{name}?w=40&fmt=png")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert decode(response.data).shape[1] == 40


JPEG = encode(photo(120, 80), ".jpg")


@pytest.mark.parametrize(
    "data",
    [
        JPEG + b"\0" * 5000,
        JPEG + b"PK\x03\x04" + bytes(200),
        JPEG + b"\0\0\0\x18ftypmp42\xff\xd9" + bytes(range(256)) * 40 + b"\xff\xda\x00\x0c" + bytes(99),
        with_exif_thumbnail(JPEG, encode(photo(24, 16, seed=3), ".jpg")) + b"SEFH" + bytes(64) + b"SEFT",
    ],
    ids=["zero-padding", "zip", "video-trailer", "thumbnail-and-trailer"],
)
def test_a_whole_jpeg_with_bytes_after_its_end_is_rendered(
    workers: tuple[Flask, Flask], root: Path, request: pytest.FixtureRequest, data: bytes
) -> None:
    name = f"extra-{request.node.callspec.id}.jpg"
    (root / name).write_bytes(data)
    response = workers[0].test_client().get(f"/image/{name}?w=60")
    assert response.status_code == 200
    assert decode(response.data).shape[:2] == (40, 60)


def test_a_png_with_bytes_after_iend_is_rendered(workers: tuple[Flask, Flask], root: Path) -> None:
    (root / "extra.png").write_bytes(originals()["still.png"] + b"trailing" * 50)
    response = workers[0].test_client().get("/image/extra.png?w=48")
    assert response.status_code == 200
    assert decode(response.data).shape[:2] == (32, 48)


@pytest.mark.integration
def test_a_remote_original_cut_short_is_refused_as_a_local_one(tmp_path: Path) -> None:
    """An upstream that frames a truncated file honestly (its length, then all of it): the copy is
    a whole download of a cut image, and probed like any local file."""
    with web_originals() as upstream:
        upstream.files["photo.jpg"] = JPEG
        mounts = f"img/={upstream.base}img/,half/={upstream.base}half/"
        settings = Settings(
            image_root=tmp_path, cache_dir=tmp_path / "cache", source=parse_source("S", mounts)
        )
        client = create_app(settings).test_client()
        assert client.get("/image/img/photo.jpg?w=60").status_code == 200
        for _ in range(2):
            assert_refused(client, "/image/half/photo.jpg?w=60")

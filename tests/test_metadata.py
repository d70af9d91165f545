"""PROXY_KEEP_COPYRIGHT (proxy/metadata.py): the original's copyright and artist kept in JPEG
and WebP answers, from its EXIF or its XMP, and nothing else; off by default."""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask import Flask
from PIL import Image

from proxy import create_app
from proxy.formats import FORMATS
from proxy.metadata import ARTIST, COPYRIGHT, Credit, credit_of, credited
from proxy.pipeline import encode
from proxy.settings import Settings

from .support.browser import new_page
from .support.images import animation, photo

ORIENTATION, MAKE = 0x0112, 0x010F


def exif_jpeg(path: Path, **tags: object) -> None:
    exif = Image.Exif()
    for tag, value in {
        COPYRIGHT: "(c) 2026 Ada",
        ARTIST: "Ada Lovelace",
        MAKE: "Camera",
        ORIENTATION: 6,
    }.items():
        exif[tag] = value
    Image.fromarray(photo(120, 80)[..., ::-1]).save(path, "JPEG", exif=exif.tobytes(), **tags)


@pytest.fixture
def keeping(settings: Settings, image_root: Path) -> Flask:
    exif_jpeg(image_root / "credited.jpg")
    return create_app(replace(settings, keep_copyright=True))


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "avif"])
def test_copyright_and_artist_are_kept_and_nothing_else(keeping: Flask, fmt: str) -> None:
    with keeping.test_client() as client:
        answer = client.get(f"/image/credited.jpg?w=60&fmt={fmt}")
    assert answer.status_code == 200
    with Image.open(io.BytesIO(answer.data)) as image:
        tags = image.getexif()
        xmp = image.info.get("xmp", b"")
    assert tags.get(COPYRIGHT) == "(c) 2026 Ada" and tags.get(ARTIST) == "Ada Lovelace"
    assert ORIENTATION not in tags and MAKE not in tags  # upright pixels; the rest stripped
    if fmt != "avif":  # HEIF keeps XMP as an item of its own, not written
        assert b"(c) 2026 Ada" in (xmp if isinstance(xmp, bytes) else xmp.encode())
    with Image.open(io.BytesIO(answer.data)) as image:  # libavif's reader (OpenCV's refuses the item)
        assert image.size == (60, 90)  # turned upright: 80 x 120, then 60 wide


def test_off_by_default_nothing_is_kept(settings: Settings, image_root: Path) -> None:
    exif_jpeg(image_root / "credited.jpg")
    with create_app(settings).test_client() as client:
        plain = client.get("/image/credited.jpg?w=60&fmt=jpeg")
    with Image.open(io.BytesIO(plain.data)) as image:
        assert not image.getexif()
    with create_app(replace(settings, keep_copyright=True)).test_client() as client:
        kept = client.get("/image/credited.jpg?w=60&fmt=jpeg")
    assert kept.headers["ETag"] != plain.headers["ETag"]  # other bytes, another variant


@pytest.mark.parametrize(
    ("alpha", "lossless"),
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["vp8", "vp8+alph", "vp8l", "vp8l+a"],
)
def test_every_kind_of_webp_stays_whole(alpha: bool, lossless: bool) -> None:
    pixels = photo(40, 30)
    if alpha:
        pixels = np.dstack((pixels, np.full((30, 40), 128, np.uint8)))
    flags = [cv2.IMWRITE_WEBP_QUALITY, 101 if lossless else 80]
    data = cv2.imencode(".webp", pixels, flags)[1].tobytes()
    kept = credited(data, Credit("(c) X", "Y"))
    before = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    after = cv2.imdecode(np.frombuffer(kept, np.uint8), cv2.IMREAD_UNCHANGED)
    assert after is not None and after.shape == before.shape and (after == before).all()
    with Image.open(io.BytesIO(kept)) as image:
        assert image.getexif().get(COPYRIGHT) == "(c) X" and image.size == (40, 30)


@pytest.mark.parametrize("alpha", [False, True])
def test_an_avif_still_gets_an_exif_item_and_keeps_its_pixels(alpha: bool) -> None:
    pixels = photo(40, 30)
    if alpha:
        pixels = np.dstack((pixels, np.full((30, 40), 128, np.uint8)))
    data = encode(pixels, FORMATS["avif"], 60)
    kept = credited(data, Credit("(c) X", "Y"))
    with Image.open(io.BytesIO(kept)) as image, Image.open(io.BytesIO(data)) as before:
        assert image.getexif().get(COPYRIGHT) == "(c) X" and image.getexif().get(ARTIST) == "Y"
        assert (np.asarray(image) == np.asarray(before)).all()  # every item still where iloc says


def test_an_avif_sequence_is_left_as_it_is() -> None:
    frames = [photo(40, 30, seed=i) for i in range(2)]
    data = animation(".avif", frames)
    assert credited(data, Credit("(c) X", "Y")) == data


def test_credits_from_xmp_when_the_exif_has_none(tmp_path: Path) -> None:
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description><dc:rights><rdf:Alt>'
        '<rdf:li xml:lang="x-default">&#169; Studio &amp; Co</rdf:li></rdf:Alt></dc:rights>'
        "<dc:creator><rdf:Seq><rdf:li>Grace</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    path = tmp_path / "x.jpg"
    Image.fromarray(photo(40, 30)).save(path, "JPEG", xmp=xmp.encode())
    assert credit_of(str(path)) == Credit("© Studio & Co", "Grace")


def test_an_original_without_credits_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "none.png"
    path.write_bytes(cv2.imencode(".png", photo(20, 20))[1].tobytes())
    credit = credit_of(str(path))
    assert not credit and credited(b"\xff\xd8\xff\xe0", credit) == b"\xff\xd8\xff\xe0"


def test_chromium_shows_a_credited_avif(chromium: object) -> None:
    """What a browser makes of the Exif item: the picture, whole."""
    pixels = np.dstack((photo(40, 30), np.full((30, 40), 128, np.uint8)))
    kept = credited(encode(pixels, FORMATS["avif"], 60), Credit("(c) X", "Y"))
    page = new_page(chromium)
    page.set_content(f'<img id="i" src="data:image/avif;base64,{base64.b64encode(kept).decode()}">')
    page.wait_for_function("document.getElementById('i').complete")
    assert page.eval_on_selector("#i", "e => [e.naturalWidth, e.naturalHeight]") == [40, 30]

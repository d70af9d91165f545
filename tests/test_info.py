"""/info/<id>: the document's values on originals the tests make, its headers (ETag, 304, CORS,
Cache-Control, tags), signing, caching and purging, errors, and the placeholders decoded with the
reference decoders' arithmetic (written here from BlurHash's and ThumbHash's published decoders)."""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import struct
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image as PILImage
from PIL import ImageCms

from proxy import create_app
from proxy.http import etag_for
from proxy.info import document as info_document
from proxy.info.colors import average, dominant
from proxy.info.exif import exif_subset
from proxy.info.placeholders import blurhash, thumbhash
from proxy.keys import info_key, original_tag
from proxy.settings import Settings
from proxy.urls import info_url

from .support.cli import Cli
from .support.images import DATA, encode, originals, photo, quadrants
from .support.upstreams import WebOriginals

SECRET = "info-secret-0123456789abcdef"
TOKEN = "info-purge-token-0123456789"
BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def document(client: FlaskClient, path: str, **headers: str) -> dict[str, Any]:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.data
    assert response.mimetype == "application/json" and response.headers["X-Content-Type-Options"] == "nosniff"
    return json.loads(response.data)  # type: ignore[no-any-return]


def rgba_of(hex_color: str) -> tuple[int, int, int]:
    return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16)


def hexed(pixel: np.ndarray) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in pixel[:3])


def close(a: str, b: str, tolerance: int) -> bool:
    return max(abs(x - y) for x, y in zip(rgba_of(a), rgba_of(b), strict=True)) <= tolerance


# --- the reference decoders, for "decodable by the reference decoders" -----------------------


def _linear(value: float) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    return int((v * 12.92 if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def decode_blurhash(hashed: str, width: int, height: int) -> np.ndarray:
    """Wolt's decode.ts: the size flag, the maximum, the DC in sRGB, AC terms squared back."""

    def number(text: str) -> int:
        return sum(BASE83.index(c) * 83**i for i, c in enumerate(reversed(text)))

    flag = number(hashed[0])
    ny, nx = flag // 9 + 1, flag % 9 + 1
    assert len(hashed) == 4 + 2 * nx * ny
    maximum = (number(hashed[1]) + 1) / 166
    dc = number(hashed[2:6])
    colors = [[_linear(dc >> 16), _linear(dc >> 8 & 255), _linear(dc & 255)]]
    for i in range(1, nx * ny):
        value = number(hashed[4 + 2 * i : 6 + 2 * i])
        quantised = (value // 361, value // 19 % 19, value % 19)
        colors.append([math.copysign(((q - 9) / 9) ** 2, q - 9) * maximum for q in quantised])
    pixels = np.zeros((height, width, 3), np.uint8)
    for y in range(height):
        for x in range(width):
            total = [0.0, 0.0, 0.0]
            for j in range(ny):
                for i in range(nx):
                    basis = math.cos(math.pi * x * i / width) * math.cos(math.pi * y * j / height)
                    total = [t + c * basis for t, c in zip(total, colors[i + j * nx], strict=True)]
            pixels[y, x] = [_srgb(t) for t in total]
    return pixels


def decode_thumbhash(encoded: str) -> np.ndarray:
    """Evan Wallace's thumbHashToRGBA: the header, the nibbles, the DCT back to RGBA (32 px)."""
    hashed = base64.b64decode(encoded)
    header24 = hashed[0] | hashed[1] << 8 | hashed[2] << 16
    header16 = hashed[3] | hashed[4] << 8
    l_dc, p_dc, q_dc = (header24 & 63) / 63, (header24 >> 6 & 63) / 31.5 - 1, (header24 >> 12 & 63) / 31.5 - 1
    l_scale, has_alpha = (header24 >> 18 & 31) / 31, bool(header24 >> 23)
    p_scale, q_scale, landscape = (header16 >> 3 & 63) / 63, (header16 >> 9 & 63) / 63, bool(header16 >> 15)
    l_max = 5 if has_alpha else 7
    lx = max(3, l_max if landscape else header16 & 7)
    ly = max(3, header16 & 7 if landscape else l_max)
    a_dc, a_scale = ((hashed[5] & 15) / 15, (hashed[5] >> 4) / 15) if has_alpha else (1.0, 1.0)
    nibbles = [n for byte in hashed[6 if has_alpha else 5 :] for n in (byte & 15, byte >> 4)]

    def channel(nx: int, ny: int, scale: float) -> list[tuple[int, int, float]]:
        terms = []
        for cy in range(ny):
            for cx in range(0 if cy else 1, nx):
                if cx * ny < nx * (ny - cy):
                    terms.append((cx, cy, (nibbles.pop(0) / 7.5 - 1) * scale))
        return terms

    l_ac, p_ac, q_ac = channel(lx, ly, l_scale), channel(3, 3, p_scale * 1.25), channel(3, 3, q_scale * 1.25)
    a_ac = channel(5, 5, a_scale) if has_alpha else []
    ratio = lx / ly
    w, h = (32, round(32 / ratio)) if ratio > 1 else (round(32 * ratio), 32)
    out = np.zeros((h, w, 4), np.uint8)

    def summed(x: int, y: int, dc: float, terms: list[tuple[int, int, float]]) -> float:
        return dc + sum(
            f * math.cos(math.pi / w * (x + 0.5) * cx) * 2 * math.cos(math.pi / h * (y + 0.5) * cy)
            for cx, cy, f in terms
        )

    for y in range(h):
        for x in range(w):
            lum, p, q = summed(x, y, l_dc, l_ac), summed(x, y, p_dc, p_ac), summed(x, y, q_dc, q_ac)
            a = summed(x, y, a_dc, a_ac)
            b = lum - 2 / 3 * p
            r = (3 * lum - b + q) / 2
            g = r - q
            out[y, x] = [int(max(0.0, min(1.0, v)) * 255) for v in (r, g, b, a)]
    return out


# --- the placeholders against reference outputs -------------------------------------------------


def reference_images() -> dict[str, np.ndarray]:
    noise = np.random.default_rng(29).integers(0, 256, (30, 20, 4), dtype=np.uint8)  # random alpha too
    spot = np.zeros((40, 40, 4), np.uint8)
    spot[...] = (30, 60, 200, 255)
    spot[10:25, 5:20] = (250, 200, 20, 255)
    spot[30:, 25:, 3] = 0
    return {"noise": noise, "spot": spot}


# Computed by the reference encoders' npm packages (blurhash 2.0.5, thumbhash 0.1.1) on the same
# pixels (RGBA rows). The npm blurhash scales AC terms by the largest signed one where Wolt's
# Swift reference and Algorithm.md take the largest magnitude; "spot" is where they differ, and
# its hash is the npm encoder's with that one change, as the Swift reference computes it.
REFERENCE = {
    "noise": ("L9He%q}rO%lmymETMzJln5IapHRh", "IPiBCwIINldE9ZhfS/Vj9ArvloOSSJs="),
    "spot": ("LUCPio^ZIw5J${xUWFNM0s9*xU=:", "2tSFRQQeTVGZZzBKpk2Z0JQJXpcvisKmdg=="),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_the_placeholders_are_the_reference_encoders(name: str) -> None:
    image = reference_images()[name]
    assert (blurhash(image[..., :3]), thumbhash(image)) == REFERENCE[name]


def test_the_placeholders_decode_to_the_picture() -> None:
    """Each quadrant of the decoded placeholders is nearer its own colour than any other's."""
    image = cv2.cvtColor(quadrants(64, 48), cv2.COLOR_BGR2RGBA)
    truth = {(0, 0): (255, 0, 0), (0, 1): (0, 255, 0), (1, 0): (0, 0, 255), (1, 1): (255, 255, 255)}
    for decoded in (decode_blurhash(blurhash(image[..., :3]), 32, 24), decode_thumbhash(thumbhash(image))):
        h, w = decoded.shape[:2]
        for (row, column), color in truth.items():
            patch = decoded[row * h // 2 + h // 8 : (row + 1) * h // 2 - h // 8, column * w // 2 + w // 8 :]
            patch = patch[:, : w // 2 - w // 4]
            mean = patch[..., :3].reshape(-1, 3).mean(axis=0)
            nearest = min(truth.values(), key=lambda c: float(np.abs(mean - np.array(c)).sum()))
            assert nearest == color, (decoded.shape, row, column, mean)


def test_thumbhash_keeps_alpha_and_the_aspect_ratio() -> None:
    image = np.zeros((40, 80, 4), np.uint8)
    image[..., :3] = (200, 30, 30)
    image[:, 40:, 3] = 255  # left half transparent
    decoded = decode_thumbhash(thumbhash(image))
    assert decoded.shape == (19, 32, 4)  # 2:1 as ThumbHash approximates it with alpha: 5 terms by 3
    assert decoded[8, 3, 3] < 64 and decoded[8, 28, 3] > 192


def test_average_is_in_linear_light_and_dominant_is_the_largest_cluster() -> None:
    checker = np.zeros((8, 8, 4), np.uint8)
    checker[..., 3] = 255
    checker[::2, ::2, :3] = checker[1::2, 1::2, :3] = 255
    assert average(checker) == "#bcbcbc"  # not #808080: half the light of white, as an eye sees it
    mostly_red = np.zeros((10, 10, 4), np.uint8)
    mostly_red[...] = (230, 20, 20, 255)
    mostly_red[:3] = (20, 20, 230, 255)
    mostly_red[:, :1] = (10, 200, 10, 0)  # transparent: no part of the picture
    assert dominant(mostly_red) == "#e61414"
    assert [dominant(mostly_red) for _ in range(3)] == ["#e61414"] * 3
    clear = np.zeros((4, 4, 4), np.uint8)
    assert average(clear) is None and dominant(clear) is None


# --- the document, on originals the tests make ---------------------------------------------------


def exif_jpeg(orientation: int = 1, gps: bool = True) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Canon"
    exif[0x0110] = "EOS R5"
    exif[0x013B] = "Ada Lovelace"
    exif[0x8298] = "(c) Ada\0Editor Bob"
    details = exif.get_ifd(0x8769)
    details[0x9003] = "2024:05:01 14:03:59"
    details[0x9011] = "+02:00"
    if gps:
        position = exif.get_ifd(0x8825)
        position.update({1: "N", 2: (48.0, 51.0, 29.6), 3: "W", 4: (2.0, 17.0, 40.2), 5: b"\x00", 6: 35.5})
    out = io.BytesIO()
    PILImage.fromarray(photo(60, 40)[..., ::-1]).save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


EXPECTED_EXIF = {
    "orientation": 6,
    "make": "Canon",
    "model": "EOS R5",
    "date_taken": "2024-05-01T14:03:59+02:00",
    "copyright": "(c) Ada; Editor Bob",
    "artist": "Ada Lovelace",
}


def test_a_photo_s_exif_and_its_upright_size(client: FlaskClient, image_root: Path) -> None:
    (image_root / "camera.jpg").write_bytes(exif_jpeg(orientation=6))
    found = document(client, "/info/camera.jpg")
    assert (found["width"], found["height"], found["format"]) == (40, 60, "jpeg")  # stored 60x40, turned
    assert found["exif"] == EXPECTED_EXIF  # no position: PROXY_INFO_GPS is off
    assert found["id"] == "camera.jpg" and found["bytes"] == (image_root / "camera.jpg").stat().st_size
    assert (found["frames"], found["duration_ms"], found["alpha"], found["profile"]) == (1, None, False, None)


def test_the_position_only_when_the_operator_allows_it(settings: Settings, image_root: Path) -> None:
    (image_root / "camera.jpg").write_bytes(exif_jpeg())
    without = create_app(settings).test_client().get("/info/camera.jpg")
    client = create_app(replace(settings, info_gps=True)).test_client()
    found = document(client, "/info/camera.jpg")
    assert "gps" not in without.get_json()["exif"]
    assert found["exif"]["gps"] == {"latitude": 48.8582222, "longitude": -2.2945, "altitude": 35.5}
    assert found["exif"]["orientation"] == 1
    assert without.headers["ETag"] != client.get("/info/camera.jpg").headers["ETag"]  # two documents
    (image_root / "plain.jpg").write_bytes(exif_jpeg(gps=False))
    assert document(client, "/info/plain.jpg")["exif"]["gps"] is None


def test_exif_from_every_format_pillow_or_pi_heif_reads(tmp_path: Path) -> None:
    exif = PILImage.Exif()
    exif[0x010F], exif[0x0112] = "Nikon", 3
    exif.get_ifd(0x8769)[0x9003] = "2020:02:29 23:59:59"
    picture = PILImage.fromarray(photo(32, 24)[..., ::-1])
    for extension, format in [
        ("jpg", "JPEG"),
        ("png", "PNG"),
        ("webp", "WEBP"),
        ("tiff", "TIFF"),
        ("avif", "AVIF"),
    ]:
        path = tmp_path / f"a.{extension}"
        picture.save(path, format, exif=exif.tobytes())
        subset = exif_subset(str(path), {"jpg": "jpeg"}.get(extension, extension))
        assert (subset["make"], subset["orientation"], subset["date_taken"]) == (
            "Nikon",
            3,
            "2020-02-29T23:59:59",
        )
    heif = exif_subset(str(DATA / "heif" / "orientation-6.heic"), "heif")
    assert heif["orientation"] == 6  # the EXIF block as recorded; libheif's own rotation is applied
    for name, format in [("g.gif", "gif"), ("b.bmp", "bmp")]:
        path = tmp_path / name
        picture.save(path)
        assert exif_subset(str(path), format) == dict.fromkeys(EXPECTED_EXIF)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("2024:13:01 00:00:00", None),
        (b"x", None),
    ],
)
def test_a_date_that_is_not_one_is_null(tmp_path: Path, value: object, expected: object) -> None:
    exif = PILImage.Exif()
    exif.get_ifd(0x8769)[0x9003] = value
    path = tmp_path / "a.jpg"
    PILImage.new("RGB", (8, 8)).save(path, exif=exif.tobytes())
    assert exif_subset(str(path), "jpeg")["date_taken"] == expected


@pytest.mark.parametrize(
    ("written", "shown"),
    [("© Ada Ström".encode(), "© Ada Ström"), ("© Ada Ström".encode("latin-1"), "© Ada Ström")],
)
def test_text_in_utf8_or_latin1(tmp_path: Path, written: bytes, shown: str) -> None:
    text = written + b"\0"
    ifd = (1).to_bytes(2, "big") + struct.pack(">HHII", 0x8298, 2, len(text), 26) + b"\0\0\0\0"
    payload = b"Exif\0\0MM\0*" + (8).to_bytes(4, "big") + ifd + text
    jpeg = encode(photo(16, 16), ".jpg")
    path = tmp_path / "text.jpg"
    path.write_bytes(jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:])
    assert exif_subset(str(path), "jpeg")["copyright"] == shown


def test_a_broken_exif_block_is_no_exif(tmp_path: Path) -> None:
    jpeg = encode(photo(16, 16), ".jpg")
    payload = b"Exif\0\0MM\0*\0\0\0\x08\xff\xff"  # an IFD that claims 65535 entries and has none
    path = tmp_path / "broken.jpg"
    path.write_bytes(jpeg[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:])
    assert exif_subset(str(path), "jpeg", gps=True) == {**dict.fromkeys(EXPECTED_EXIF), "gps": None}


@pytest.mark.parametrize("extension", [".gif", ".webp", ".png"])
def test_an_animation_s_frames_and_duration(client: FlaskClient, image_root: Path, extension: str) -> None:
    animated = cv2.Animation()
    animated.frames = [photo(48, 32, seed) for seed in range(3)]
    animated.durations = [100, 250, 400]
    ok, data = cv2.imencodeanimation(extension, animated)
    assert ok
    (image_root / f"moving{extension}").write_bytes(data.tobytes())
    found = document(client, f"/info/moving{extension}")
    assert (found["frames"], found["duration_ms"], found["width"], found["height"]) == (3, 750, 48, 32)


def test_alpha_and_colours_count_only_what_shows(client: FlaskClient, image_root: Path) -> None:
    image = np.zeros((40, 60, 4), np.uint8)
    image[..., :3] = (0, 200, 0)  # green, but transparent
    image[:, 30:] = (40, 40, 220, 255)  # red (BGR), opaque
    (image_root / "half.png").write_bytes(encode(image, ".png"))
    found = document(client, "/info/half.png")
    assert found["alpha"] is True
    assert found["colors"] == {"average": "#dc2828", "dominant": "#dc2828"}
    shown = decode_thumbhash(found["thumbhash"])
    assert shown[..., 3].min() < 64 and shown[..., 3].max() > 192
    flat = decode_blurhash(found["blurhash"], 32, 20)  # no alpha: the transparent half on white
    assert flat[10, 2].min() > 200 and int(flat[10, 29, 0]) - int(flat[10, 29, 1]) > 60  # white, red


def test_a_solid_colour_is_its_own_average_and_dominant(client: FlaskClient, image_root: Path) -> None:
    (image_root / "solid.png").write_bytes(encode(np.full((30, 50, 3), (30, 140, 250), np.uint8), ".png"))
    found = document(client, "/info/solid.png")
    assert found["colors"] == {"average": "#fa8c1e", "dominant": "#fa8c1e"}
    dc = found["blurhash"][2:6]  # BlurHash's DC is the linear mean in sRGB, exactly
    assert sum(BASE83.index(c) * 83**i for i, c in enumerate(reversed(dc))) == 0xFA8C1E
    assert close(hexed(decode_blurhash(found["blurhash"], 8, 6)[3, 4]), "#fa8c1e", 8)
    assert close(hexed(decode_thumbhash(found["thumbhash"])[5, 5]), "#fa8c1e", 12)


def test_the_colour_profile_by_name_and_colours_in_srgb(client: FlaskClient, image_root: Path) -> None:
    profile = (DATA / "icc" / "DisplayP3-v4.icc").read_bytes()
    out = io.BytesIO()
    PILImage.new("RGB", (40, 30), (0, 255, 0)).save(out, "PNG", icc_profile=profile)
    (image_root / "p3.png").write_bytes(out.getvalue())
    found = document(client, "/info/p3.png")
    described = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile))).strip()
    assert found["profile"] == described == "sP3"  # the compact profile's own short name
    red, green, blue = rgba_of(found["colors"]["average"])
    assert green == 255 and red < 30 and blue < 30  # P3's green is past sRGB's: clipped to it


def test_the_samples_profile_name(settings: Settings) -> None:
    client = create_app(replace(settings, image_root=Path(__file__).parent.parent / "samples")).test_client()
    assert document(client, "/info/rocket.jpg")["profile"] == "Adobe RGB (1998)"


@pytest.mark.parametrize("name", sorted(originals()))
def test_every_format_has_a_document(settings: Settings, tmp_path: Path, name: str) -> None:
    root = tmp_path / "all"
    root.mkdir()
    (root / name).write_bytes(originals()[name])
    found = document(create_app(replace(settings, image_root=root)).test_client(), f"/info/{name}")
    assert (found["width"], found["height"]) in ((96, 64), (64, 48), (48, 32))
    assert found["blurhash"] and found["thumbhash"] and found["colors"]["average"]
    assert found["frames"] == (3 if name.startswith("animated") else 1)


# --- caching, validators, headers -----------------------------------------------------------------


def test_computed_once_then_a_hit_that_decodes_nothing(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.get("/info/photo.jpg")
    assert first.headers["X-Cache"] == "MISS"

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached /info decoded or opened the original")

    monkeypatch.setattr(info_document, "decode", refuse)
    monkeypatch.setattr(info_document, "exif_subset", refuse)
    monkeypatch.setattr(info_document, "probe", refuse)
    again = client.get("/info/photo.jpg")
    assert again.headers["X-Cache"] == "HIT" and again.data == first.data
    assert again.headers["ETag"] == first.headers["ETag"]


def test_the_etag_is_the_key_s_and_a_304_needs_nothing_else(client: FlaskClient, app: Any) -> None:
    first = client.get("/info/photo.jpg")
    version = app.extensions["proxy"].store.resolve("photo.jpg").version
    assert first.headers["ETag"] == f'"{etag_for(info_key("photo.jpg", version))}"'
    assert (
        first.headers["Cache-Control"]
        == "public, max-age=3600, stale-while-revalidate=60, stale-if-error=86400"
    )
    assert first.headers["Last-Modified"] and "Vary" not in first.headers
    assert first.headers["Surrogate-Key"] == original_tag("photo.jpg")
    app.extensions["proxy"].cache.clear()  # a 304 reads no cache
    again = client.get("/info/photo.jpg", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.data
    assert again.headers["ETag"] == first.headers["ETag"] and again.headers["Last-Modified"]
    head = client.head("/info/photo.jpg")
    assert head.status_code == 200 and not head.data
    assert head.headers["Content-Length"] == first.headers["Content-Length"]


def test_a_replaced_original_has_a_new_document(client: FlaskClient, image_root: Path) -> None:
    first = client.get("/info/quadrants.png")
    (image_root / "quadrants.png").write_bytes(encode(np.full((10, 20, 3), 9, np.uint8), ".png"))
    os.utime(image_root / "quadrants.png", ns=(1, 1))
    second = client.get("/info/quadrants.png", headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert (second.get_json()["width"], second.get_json()["colors"]["average"]) == (20, "#090909")


def test_a_purge_of_the_original_drops_its_document(settings: Settings) -> None:
    client = create_app(replace(settings, purge_token=TOKEN)).test_client()
    assert client.get("/info/photo.jpg").headers["X-Cache"] == "MISS"
    assert client.get("/info/photo.jpg").headers["X-Cache"] == "HIT"
    purged = client.open("/image/photo.jpg", method="PURGE", headers={"Authorization": f"Bearer {TOKEN}"})
    assert purged.get_json()["purged"] == 1
    assert client.get("/info/photo.jpg").headers["X-Cache"] == "MISS"


def test_cors_as_for_images(settings: Settings) -> None:
    page = "https://shop.example"
    client = create_app(replace(settings, cors_origins=(page,))).test_client()
    answer = client.get("/info/photo.jpg", headers={"Origin": page})
    assert answer.headers["Access-Control-Allow-Origin"] == page and answer.headers["Vary"] == "Origin"
    assert "ETag" in answer.headers["Access-Control-Expose-Headers"]
    missing = client.get("/info/missing.jpg", headers={"Origin": page})
    assert missing.status_code == 404 and missing.headers["Access-Control-Allow-Origin"] == page
    other = client.get("/info/photo.jpg", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers and other.headers["Vary"] == "Origin"


def test_signed_when_a_secret_is_set(settings: Settings) -> None:
    client = create_app(replace(settings, secret=SECRET)).test_client()
    assert client.get("/info/photo.jpg").status_code == 403
    assert client.get("/info/missing.jpg").status_code == 403  # nothing learnt without a signature
    assert client.get(info_url("photo.jpg", secret=SECRET)).status_code == 200
    assert client.get(info_url("photo.jpg", secret=SECRET, v="2")).status_code == 200
    assert info_url("a b.jpg", base="https://img.example/") == "https://img.example/info/a%20b.jpg"
    assert client.get(info_url("photo.jpg", secret="another-secret-0123456789")).status_code == 403


def test_the_cli_signs_info_urls(settings: Settings, cli: Cli) -> None:
    result = cli("sign", "/info/photo.jpg", PROXY_SECRET=SECRET)
    assert result.returncode == 0 and result.stdout.strip() == info_url("photo.jpg", secret=SECRET)
    signed = create_app(replace(settings, secret=SECRET)).test_client()
    assert signed.get(result.stdout.strip()).status_code == 200


def test_the_access_log_names_info(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from .test_access import written

    caplog.set_level(logging.INFO, logger="proxy.access")
    app = create_app(settings)
    lines = written(app, tmp_path)
    client = app.test_client()
    client.get("/info/photo.jpg")
    client.get("/info/photo.jpg")
    assert [(line["transform"], line["cache"]) for line in lines()] == [("info", "MISS"), ("info", "HIT")]


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/info/missing.jpg", 404),
        ("/info/../conftest.py", 404),
        ("/info/%2e%2e/secret.jpg", 404),
        ("/info/nested%2fdeep.webp", 404),
        ("/info/", 404),
        ("/info/text.jpg", 415),
        ("/info/empty.jpg", 415),
        ("/info/photo.jpg?w=100", 400),
        ("/info/photo.jpg?size=3", 400),
        ("/info/url/aHR0cDovL2V4YW1wbGUuY29tL2EuanBn", 404),  # /url/ is off: an id like another
    ],
)
def test_errors_are_json_with_their_status(client: FlaskClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store" and "ETag" not in response.headers
    assert response.get_json()["status"] == status


def test_v_is_accepted_and_changes_nothing(client: FlaskClient) -> None:
    assert client.get("/info/photo.jpg?v=3").headers["ETag"] == client.get("/info/photo.jpg").headers["ETag"]


def test_an_original_over_the_limits_is_413(settings: Settings) -> None:
    client = create_app(replace(settings, max_source_pixels=100 * 100)).test_client()
    assert client.get("/info/photo.jpg").status_code == 413
    client = create_app(replace(settings, max_source_bytes=1000)).test_client()
    assert client.get("/info/photo.jpg").status_code == 413


def test_a_nested_id_under_url_when_url_is_off(client: FlaskClient, image_root: Path) -> None:
    (image_root / "url").mkdir()
    (image_root / "url" / "x.png").write_bytes(encode(quadrants(20, 10), ".png"))
    assert document(client, "/info/url/x.png")["width"] == 20


# --- remote originals -----------------------------------------------------------------------------


def test_a_url_original_s_document(settings: Settings, upstream: WebOriginals) -> None:
    client = create_app(
        replace(settings, url_hosts=("127.0.0.1",), allow_private_addresses=True)
    ).test_client()
    encoded = base64.urlsafe_b64encode(f"{upstream.base}img/photo.jpg".encode()).rstrip(b"=").decode()
    found = document(client, f"/info/url/{encoded}")
    assert (found["width"], found["height"]) == (600, 400) and found["id"].startswith("url:http://127.0.0.1")
    assert client.get(f"/info/url/{encoded}").headers["X-Cache"] == "HIT"
    assert client.get("/info/url/bm90IGEgdXJs").status_code == 400  # "not a url"

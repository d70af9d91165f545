"""Hostile input against a real gunicorn: each gets its exact status, and the next good request
is still served by the same, living workers."""

from __future__ import annotations

import io
import shutil
import struct
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageCms

from proxy.color import DEFAULT_CMYK

from .support.bombs import jpeg_declaring, png_bomb, png_declaring
from .support.images import DATA, decode, encode, photo
from .support.servers import Server, start_gunicorn

pytestmark = pytest.mark.integration


def cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (64, 48), (0, 255, 255, 0)).save(buffer, "JPEG")  # pure red, in ink
    return buffer.getvalue()


def animated_gif() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "lime", "blue")]
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


HEIC = (DATA / "heif" / "photo.heic").read_bytes()


def heic_declaring(width: int, height: int) -> bytes:
    """A real HEIC whose ispe box declares another coded size (its clean aperture keeps 64x48)."""
    at = HEIC.index(b"ispe") + 8
    return HEIC[:at] + struct.pack(">II", width, height) + HEIC[at + 8 :]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("hostile")
    root = base / "images"
    root.mkdir()
    jpeg, png = encode(photo(300, 200), ".jpg"), encode(photo(300, 200), ".png")
    files = {
        "good.jpg": jpeg,
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "empty.png": b"",
        "text.jpg": b"<?php system($_GET['c']); ?>\n",
        "polyglot.png": b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>",
        "polyglot.gif": b"GIF89a/*\x00\x00*/=1;alert(document.domain)//" + bytes(32),
        "jpeg-with-zip.jpg": jpeg + b"PK\x03\x04" + bytes(200),
        "bomb.png": png_bomb(20000, 20000),
        "bomb-declared.png": png_declaring(png, 100000, 100000),
        "bomb-declared.jpg": jpeg_declaring(jpeg, 60000, 60000),
        "tall.png": encode(np.zeros((100000, 1, 3), np.uint8), ".png"),
        "cmyk.jpg": cmyk_jpeg(),
        "animated.gif": animated_gif(),
        "bomb-declared.heic": heic_declaring(100000, 100000),
        "truncated.heic": HEIC[: len(HEIC) // 2],
        "garbage.jxl": b"\xff\x0a" + bytes(range(256)) * 4,
        "netpbm.png": encode(np.zeros((8, 8, 3), np.uint8), ".ppm"),
        "radiance.png": encode(np.zeros((8, 8, 3), np.float32), ".hdr"),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    secret = base / "secret.jpg"
    secret.write_bytes(jpeg)
    (root / "escape.jpg").symlink_to(secret)
    server = start_gunicorn(
        {"PROXY_IMAGE_ROOT": str(root), "PROXY_CACHE_DIR": str(base / "cache")}, workers=2
    )
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


CASES = [
    # originals
    ("/image/truncated.jpg?w=100", 415),  # never half a picture, grey below the cut
    ("/image/truncated.png?w=100", 415),
    ("/image/empty.png", 415),
    ("/image/text.jpg", 415),
    ("/image/polyglot.png", 415),
    ("/image/polyglot.gif", 415),
    ("/image/jpeg-with-zip.jpg?w=50", 200),  # a valid JPEG; the appended archive is never served
    ("/image/bomb.png?w=100", 413),
    ("/image/bomb-declared.png", 413),
    ("/image/bomb-declared.jpg?w=10", 413),
    ("/image/tall.png?h=1000", 200),
    ("/image/tall.png?fmt=webp", 400),  # WebP cannot hold 100000 rows
    ("/image/cmyk.jpg?fmt=png", 200),
    ("/image/animated.gif?fmt=png", 200),  # the first frame
    ("/image/bomb-declared.heic?w=10", 413),  # its coded size (ispe), before libheif sees it
    ("/image/truncated.heic?w=10", 415),
    ("/image/garbage.jxl", 415),
    ("/image/netpbm.png", 415),
    ("/image/radiance.png", 415),
    # parameters
    ("/image/good.jpg?w=-100", 400),
    ("/image/good.jpg?w=99999999999999999999", 400),
    ("/image/good.jpg?w=1.5", 400),
    ("/image/good.jpg?w=1e3", 400),
    ("/image/good.jpg?w=100&w=200", 400),
    ("/image/good.jpg?w=", 400),
    ("/image/good.jpg?w=%D9%A3%D9%A0%D9%A0", 400),  # Arabic-Indic digits
    ("/image/good.jpg?w=%EF%BC%93", 400),  # fullwidth 3
    ("/image/good.jpg?q=0x10", 400),
    ("/image/good.jpg?dpr=NaN", 400),
    ("/image/good.jpg?bg=%00%00%00", 400),
    ("/image/good.jpg?fit=inside%00", 400),
    ("/image/good.jpg?fmt=svg", 400),
    ("/image/good.jpg?w%00=1", 400),
    # ids
    ("/image/../../../../etc/passwd", 404),
    ("/image/%2e%2e/%2e%2e/etc/passwd", 404),
    ("/image/..%2f..%2fetc%2fpasswd", 404),
    ("/image//etc/passwd", 404),
    ("/image/%2Fetc%2Fpasswd", 404),
    ("/image/..%5c..%5cetc%5cpasswd", 404),
    ("/image/good.jpg%00.png", 404),
    ("/image/escape.jpg", 404),
    ("/image/.%2e/secret.jpg", 404),
    ("/image/" + "a/" * 1000 + "good.jpg", 404),  # 2 KB id: over our limit, under gunicorn's
]


@pytest.mark.parametrize(("path", "status"), CASES)
def test_hostile_input_gets_its_status_and_breaks_nothing(hostile: Server, path: str, status: int) -> None:
    workers = hostile.workers()
    got, headers, body = hostile.request("GET", path)
    assert got == status, path
    if status == 200:
        assert decode(body).size > 0
    else:
        assert headers["content-type"] == "application/json"
        assert headers["cache-control"] == "no-store"
        assert b"Traceback" not in body and b"/tmp/" not in body
    good, _, image = hostile.request("GET", "/image/good.jpg?w=64")
    assert good == 200 and decode(image).shape == (43, 64, 3)
    assert hostile.workers() == workers


def test_cmyk_and_animation_come_out_right(hostile: Server) -> None:
    _, _, body = hostile.request("GET", "/image/cmyk.jpg?fmt=png")
    red = decode(body)
    press = ImageCms.ImageCmsProfile(io.BytesIO(DEFAULT_CMYK))  # no profile: a press is assumed
    ink = ImageCms.profileToProfile(
        Image.new("CMYK", (1, 1), (0, 255, 255, 0)), press, ImageCms.createProfile("sRGB"), outputMode="RGB"
    )
    r, g, b = ink.getpixel((0, 0))  # type: ignore[misc]
    assert red.shape == (48, 64, 3) and np.all(np.abs(red[24, 32].astype(int) - (b, g, r)) < 6)
    _, _, body = hostile.request("GET", "/image/animated.gif?fmt=png")
    first = decode(body)
    assert first.shape[:2] == (32, 32) and np.all(np.abs(first[16, 16, :3].astype(int) - (0, 0, 255)) < 12)


def test_request_lines_over_gunicorns_limit_are_refused_by_it(hostile: Server) -> None:
    workers = hostile.workers()
    status, _, _ = hostile.request("GET", "/image/" + "a" * 8000)
    assert status == 414  # gunicorn's limit_request_line, before the app
    assert hostile.request("GET", "/image/good.jpg?w=10")[0] == 200
    assert hostile.workers() == workers


def test_a_truncated_jpeg_is_refused_and_no_worker_is_lost(hostile: Server) -> None:
    workers = hostile.workers()
    for _ in range(2):  # refused from the file's end, before decoding; remembered, never cached
        status, headers, _ = hostile.request("GET", "/image/truncated.jpg")
        assert status == 415 and headers["cache-control"] == "no-store"
    assert hostile.request("GET", "/image/good.jpg?w=12")[0] == 200
    assert hostile.workers() == workers


def test_lying_headers_cost_milliseconds(hostile: Server) -> None:
    import time

    started = time.perf_counter()
    for _ in range(10):
        assert hostile.request("GET", "/image/bomb.png?w=100")[0] == 413
    assert (time.perf_counter() - started) / 10 < 0.05

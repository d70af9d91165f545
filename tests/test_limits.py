"""Resource limits: bombs, byte and pixel limits, the decoder allowlist, the deadline."""

from __future__ import annotations

import functools
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from proxy import create_app
from proxy.errors import InvalidParameter, Overloaded, SourceTooLarge, UnsupportedImage
from proxy.formats import SOURCE
from proxy.limits import Limits
from proxy.params import ImageParams
from proxy.pipeline import render
from proxy.settings import Settings

from .support.bombs import jpeg_declaring, png_bomb, png_declaring, webp_declaring
from .support.images import encode, photo, write
from .support.servers import REPO


@functools.cache
def real_bomb() -> bytes:
    return png_bomb(20000, 20000)  # 400 megapixels of zeros, ~400 KB on disk


@pytest.mark.slow
def test_real_png_bomb_is_refused_fast_without_allocating(tmp_path: Path) -> None:
    data = real_bomb()
    assert len(data) < 2_000_000
    path = write(tmp_path, "bomb.png", data)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(SourceTooLarge, match="20000x20000"):
        render(path, ImageParams(width=100), SOURCE)
    assert time.perf_counter() - started < 0.1
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50_000  # decoding would take 400 MB at least


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("declared.png", png_declaring(encode(photo(64, 64), ".png"), 100000, 100000)),
        ("declared.jpg", jpeg_declaring(encode(photo(64, 64), ".jpg"), 60000, 60000)),
        (
            "declared.webp",  # decoded by libwebp.py; a lie it would refuse, so a 413 shows it never ran
            webp_declaring(encode(photo(64, 64), ".webp", cv2.IMWRITE_WEBP_QUALITY, 90), 16000, 16000),
        ),
    ],
)
def test_lying_headers_are_refused_before_decoding(tmp_path: Path, name: str, data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(SourceTooLarge):
        render(write(tmp_path, name, data), ImageParams(), SOURCE)
    assert time.perf_counter() - started < 0.05


def test_pixel_and_byte_limits_are_configurable(tmp_path: Path) -> None:
    path = write(tmp_path, "p.png", encode(photo(200, 100), ".png"))
    assert render(path, ImageParams(), SOURCE, Limits(max_source_pixels=20_000)).data
    with pytest.raises(SourceTooLarge, match="pixels"):
        render(path, ImageParams(), SOURCE, Limits(max_source_pixels=19_999))
    size = os.path.getsize(path)
    with pytest.raises(SourceTooLarge, match="bytes"):
        render(path, ImageParams(), SOURCE, Limits(max_source_bytes=size - 1))


def test_output_pixel_limit_is_a_bad_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, "p.png", encode(photo(200, 100), ".png"))
    limits = Limits(max_output_pixels=5000)
    assert render(path, ImageParams(width=100), SOURCE, limits).data  # 100 x 50
    with pytest.raises(InvalidParameter) as caught:
        render(path, ImageParams(width=101), SOURCE, limits)
    assert caught.value.parameter == "w"
    with pytest.raises(InvalidParameter) as by_height:
        render(path, ImageParams(height=51), SOURCE, limits)
    assert by_height.value.parameter == "h"  # the one that was sent
    with pytest.raises(InvalidParameter, match="no w or h was given"):
        render(path, ImageParams(), SOURCE, limits)


def rarely_used(extension: str) -> bytes:
    image = np.full((256, 256, 3), 128, np.uint8)
    if extension in (".hdr", ".pfm"):
        return encode(image.astype(np.float32) / 255, extension)
    if extension == ".pgm":
        return encode(image[..., 0], extension)
    return encode(image, extension)


@pytest.mark.parametrize("extension", [".ppm", ".pgm", ".pam", ".ras", ".hdr", ".pfm", ".jp2"])
def test_rarely_used_decoders_are_never_reached(tmp_path: Path, extension: str) -> None:
    data = rarely_used(extension)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is not None  # OpenCV would
    with pytest.raises(UnsupportedImage):
        render(write(tmp_path, "disguised.png", data), ImageParams(), SOURCE)


def test_a_passed_deadline_stops_the_transform(tmp_path: Path) -> None:
    path = write(tmp_path, "p.jpg", encode(photo(100, 100), ".jpg"))
    with pytest.raises(Overloaded):
        render(path, ImageParams(width=50), SOURCE, Limits(deadline=time.monotonic() - 1))


@pytest.mark.integration
def test_opencv_limits_follow_ours() -> None:
    """OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS at import: importing proxy first must set it."""
    script = (
        "import proxy, cv2, numpy, os\n"
        "ok, png = cv2.imencode('.png', numpy.zeros((100, 100), numpy.uint8))\n"
        "try:\n    refused = cv2.imdecode(png, -1) is None\n"
        "except cv2.error:\n    refused = True\n"
        "print(os.environ['OPENCV_IO_MAX_IMAGE_PIXELS'], refused)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**env, "PROXY_MAX_SOURCE_PIXELS": "5000"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["5000", "True"]  # 10,000 pixels: OpenCV itself refuses too


def test_limits_reach_the_http_answer(settings: Settings, image_root: Path) -> None:
    (image_root / "bomb.png").write_bytes(real_bomb())
    client = create_app(replace(settings, max_output_pixels=10_000)).test_client()
    assert client.get("/image/bomb.png?w=10").status_code == 413
    response = client.get("/image/photo.jpg")  # 600 x 400 > 10,000 pixels
    assert response.status_code == 400 and response.get_json()["parameter"] == "w"
    assert client.get("/image/photo.jpg?w=100").status_code == 200

"""Reduced copies of large originals: built on the second miss, then every fitting size from them."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pytest

from proxy.cache import VariantCache
from proxy.formats import SOURCE
from proxy.intermediate import SIDE, Intermediate, build, render_reduced
from proxy.keys import reduced_key
from proxy.params import ImageParams
from proxy.pipeline import render
from proxy.sources.files import FileStore

from .support.images import decode, encode, photo, with_exif_orientation, write


@functools.cache
def large_jpeg() -> bytes:
    """4200 x 2800: over the 4096 px threshold for a reduced copy."""
    image = cv2.resize(photo(420, 280, seed=4), (4200, 2800), interpolation=cv2.INTER_CUBIC)
    return encode(image, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 92)


@pytest.fixture
def cache_size() -> int:
    """conftest.py's ``cache``, larger."""
    return 256 << 20  # a copy is 8 MB: over 1/8 of a smaller cache


def test_small_originals_get_no_copy(tmp_path: Path) -> None:
    assert build(write(tmp_path, "small.jpg", encode(photo(800, 600), ".jpg"))) is None


def test_copy_is_upright_reduced_and_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path, "big.jpg", with_exif_orientation(large_jpeg(), 6))  # shown rotated
    copy = build(path)
    assert copy is not None
    assert copy.image.shape == (SIDE, round(2800 * SIDE / 4200), 3)  # upright: taller than wide
    assert copy.source_size == (2800, 4200)
    again = Intermediate.from_bytes(copy.to_bytes())
    assert again is not None and again.source_size == copy.source_size
    assert np.array_equal(again.image, copy.image)
    assert Intermediate.from_bytes(copy.to_bytes()[:-1]) is None  # cut short: never trusted
    assert Intermediate.from_bytes(b"garbage" * 10) is None


def test_serves_only_sizes_that_fit(tmp_path: Path) -> None:
    copy = build(write(tmp_path, "big.jpg", large_jpeg()))
    assert copy is not None
    assert copy.serves(ImageParams(width=400))
    assert copy.serves(ImageParams(width=SIDE))
    assert not copy.serves(ImageParams(width=SIDE + 1))
    assert not copy.serves(ImageParams())  # full size


def test_a_rect_is_served_from_the_copy_only_when_its_part_of_the_copy_is_large_enough(
    tmp_path: Path,
) -> None:
    copy = build(write(tmp_path, "big.jpg", large_jpeg()))  # 4200 wide, the copy 2048: 0.49x
    assert copy is not None
    assert copy.serves(ImageParams(width=400, rect=(0, 0, 1000, 1000)))  # 487 px of the copy
    assert not copy.serves(ImageParams(width=600, rect=(0, 0, 1000, 1000)))


def test_rects_and_crops_through_the_copy_match_the_original(tmp_path: Path, cache: VariantCache) -> None:
    path = write(tmp_path, "big.jpg", with_exif_orientation(large_jpeg(), 6))
    key = "copy-key"
    for width in (400, 500):
        render_reduced(cache, key, path, ImageParams(width=width), "jpeg")
    assert cache.get_blob(key) is not None
    for params in (
        ImageParams(width=300, rect=(100, 1200, 1500, 2000)),
        ImageParams(width=300, height=300, fit="cover", gravity="attention"),
        ImageParams(width=300, height=200, fit="cover", gravity="south"),
    ):
        via_copy = decode(render_reduced(cache, key, path, params, "png").data)
        direct = decode(render(path, params, "png").data)
        assert via_copy.shape == direct.shape, params
        assert cv2.PSNR(via_copy, direct) > 35, params


def test_second_miss_builds_the_copy_and_later_sizes_use_it(tmp_path: Path, cache: VariantCache) -> None:
    path = write(tmp_path, "big.jpg", large_jpeg())
    source = FileStore(tmp_path).resolve("big.jpg")
    key = reduced_key(source.id, source.version)
    first = render_reduced(cache, key, path, ImageParams(width=400), "jpeg")
    assert cache.get_blob(key) is None  # asked once: nothing extra paid
    render_reduced(cache, key, path, ImageParams(width=500), "jpeg")
    assert cache.get_blob(key) is not None  # seen before: the copy is kept
    for width in (300, 640, 1000):
        params = ImageParams(width=width, fmt="png")
        via_copy = decode(render_reduced(cache, key, path, params, "png").data)
        direct = decode(render(path, params, "png").data)
        assert via_copy.shape == direct.shape  # same geometry whichever way it was made
        assert cv2.PSNR(via_copy, direct) > 40
    assert decode(first.data).shape == (267, 400, 3)


def test_sizes_larger_than_the_copy_come_from_the_original(tmp_path: Path, cache: VariantCache) -> None:
    path = write(tmp_path, "big.jpg", large_jpeg())
    key = "copy-key"
    for width in (400, 500):
        render_reduced(cache, key, path, ImageParams(width=width), "jpeg")
    out = decode(render_reduced(cache, key, path, ImageParams(width=3000), "jpeg").data)
    assert out.shape == (2000, 3000, 3)


@pytest.mark.slow
def test_alpha_survives_the_copy(tmp_path: Path, cache: VariantCache) -> None:
    image = np.zeros((2200, 4400, 4), np.uint8)
    image[..., 2] = 255  # red
    image[:, 2200:, 3] = 255  # left half transparent
    path = write(tmp_path, "alpha.png", encode(image, ".png"))
    for width in (200, 300, 440):
        out = decode(render_reduced(cache, "k", path, ImageParams(width=width), SOURCE).data)
    assert out.shape == (220, 440, 4)
    assert out[110, 50, 3] == 0 and out[110, 400, 3] == 255 and out[110, 400, 2] == 255


def test_a_corrupt_copy_is_rebuilt(tmp_path: Path, cache: VariantCache) -> None:
    path = write(tmp_path, "big.jpg", large_jpeg())
    for width in (400, 500):
        render_reduced(cache, "k", path, ImageParams(width=width), "jpeg")
    cache.put_blob("k", b"RIC1" + bytes(100))
    out = decode(render_reduced(cache, "k", path, ImageParams(width=600), "jpeg").data)
    assert out.shape == (400, 600, 3)
    restored = cache.get_blob("k")
    assert restored is not None and Intermediate.from_bytes(restored) is not None


def test_through_http(tmp_path: Path, image_root: Path, client) -> None:  # type: ignore[no-untyped-def]
    (image_root / "big.jpg").write_bytes(large_jpeg())
    sizes = [client.get(f"/image/big.jpg?w={width}&fmt=webp") for width in (400, 401, 402)]
    assert [decode(r.data).shape[:2] for r in sizes] == [(267, 400), (267, 401), (268, 402)]
    cache = client.application.extensions["proxy"].cache
    source = FileStore(image_root).resolve("big.jpg")
    assert cache.get_blob(reduced_key(source.id, source.version)) is not None


def test_a_purge_drops_the_copy(tmp_path: Path, cache: VariantCache) -> None:
    path = write(tmp_path, "big.jpg", large_jpeg())
    for width in (400, 500):
        render_reduced(cache, "k", path, ImageParams(width=width), "jpeg", tag="o-big")
    assert cache.get_blob("k") is not None
    assert cache.purge("o-big") == 1
    assert cache.get_blob("k") is None

"""Colour management: tagged originals come out as sRGB, as LittleCMS itself converts them."""

from __future__ import annotations

import io
import logging
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageCms

from proxy.icc import matrix_shaper
from proxy.params import ImageParams
from proxy.pipeline import render
from proxy.probe import probe

from .support.images import decode, vivid, with_chunk

ICC = Path(__file__).parent / "data" / "icc"
WIDE = ["DisplayP3-v4", "AdobeCompat-v4", "ProPhoto-v4", "Rec2020-v4", "DisplayP3-v2-micro"]
SAVE = {"jpeg": {"quality": 95}, "png": {}, "webp": {"lossless": True}, "tiff": {}, "avif": {"quality": 95}}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "tiff": "tif", "avif": "avif"}


def tagged(tmp_path: Path, profile: str, fmt: str, pixels: np.ndarray | None = None) -> Path:
    path = tmp_path / f"{profile}.{EXTENSIONS[fmt]}"
    icc = (ICC / f"{profile}.icc").read_bytes()
    Image.fromarray(vivid() if pixels is None else pixels).save(path, icc_profile=icc, **SAVE[fmt])
    return path


def reference(path: Path, profile: str, width: int) -> np.ndarray:
    """LittleCMS's own conversion of the full-size image to sRGB, then resized: BGR."""
    with Image.open(path) as original:
        source = ImageCms.ImageCmsProfile(str(ICC / f"{profile}.icc"))
        pixels = original if original.mode == "CMYK" else original.convert("RGB")
        converted = ImageCms.profileToProfile(
            pixels, source, ImageCms.createProfile("sRGB"), ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
        )
    rgb = np.asarray(converted)
    height = round(rgb.shape[0] * width / rgb.shape[1])
    return cv2.cvtColor(cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.PSNR(a, b))


@pytest.mark.parametrize("profile", WIDE)
@pytest.mark.parametrize("source", ["jpeg", "png", "webp", "tiff", "avif"])
def test_wide_gamut_originals_become_srgb(tmp_path: Path, profile: str, source: str) -> None:
    path = tagged(tmp_path, profile, source)
    assert probe(str(path)).profile == (ICC / f"{profile}.icc").read_bytes()
    expected = reference(path, profile, 200)
    ours = decode(render(str(path), ImageParams(width=200), "png").data)
    assert psnr(ours, expected) >= 35
    ignored = cv2.resize(cv2.imread(str(path)), expected.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert psnr(ignored, expected) < 30  # what dropping the profile gave: the test can tell


@pytest.mark.parametrize("output", ["jpeg", "webp", "png"])
def test_every_output_format_is_converted(tmp_path: Path, output: str) -> None:
    path = tagged(tmp_path, "DisplayP3-v4", "jpeg")
    rendered = render(str(path), ImageParams(width=200, quality=100), output)
    assert psnr(decode(rendered.data)[..., :3], reference(path, "DisplayP3-v4", 200)) >= 35
    assert b"ICC_PROFILE" not in rendered.data and b"iCCP" not in rendered.data  # plain sRGB


def test_srgb_tagged_and_untagged_originals_are_left_alone(tmp_path: Path) -> None:
    pixels = vivid()
    tagged_path = tagged(tmp_path, "sRGB-v4", "png", pixels)
    untagged = tmp_path / "plain.png"
    Image.fromarray(pixels).save(untagged)
    a = decode(render(str(tagged_path), ImageParams(width=150), "png").data)
    b = decode(render(str(untagged), ImageParams(width=150), "png").data)
    assert np.array_equal(a, b)


def test_grey_with_a_grey_profile_stays_grey(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    ramp = np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (64, 1))
    Image.fromarray(ramp).save(path, icc_profile=(ICC / "sGrey-v4.icc").read_bytes())
    out = decode(render(str(path), ImageParams(), "png").data)
    assert out.ndim == 2 and np.abs(out.astype(int) - ramp).max() <= 1  # sGrey has sRGB's curve


def test_alpha_survives_the_conversion(tmp_path: Path) -> None:
    rgba = np.dstack((vivid(), np.tile(np.linspace(0, 255, 480, dtype=np.uint8), (320, 1))))
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path, icc_profile=(ICC / "DisplayP3-v4.icc").read_bytes())
    out = decode(render(str(path), ImageParams(), "png").data)
    assert out.shape[2] == 4 and np.array_equal(out[..., 3], rgba[..., 3])
    assert psnr(out[..., :3], reference(path, "DisplayP3-v4", 480)) >= 35


def test_a_broken_profile_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pixels = vivid()
    plain = io.BytesIO()
    Image.fromarray(pixels).save(plain, format="png")
    path = tmp_path / "broken.png"
    path.write_bytes(
        with_chunk(plain.getvalue(), b"iCCP", b"junk\0\0" + zlib.compress(b"not a profile" * 20))
    )
    with caplog.at_level(logging.WARNING, logger="proxy.color"):
        out = decode(render(str(path), ImageParams(), "png").data)
    assert np.array_equal(out, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    assert "unreadable ICC profile" in caplog.text


@pytest.mark.slow
def test_reduced_copies_are_srgb_too(client: FlaskClient, image_root: Path) -> None:
    """A large tagged original: the second size renders from its reduced copy, converted once."""
    big = cv2.resize(vivid(), (4200, 2800), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(big).save(
        image_root / "big.jpg", quality=92, icc_profile=(ICC / "DisplayP3-v4.icc").read_bytes()
    )
    first = decode(client.get("/image/big.jpg?w=300&fmt=png").data)
    second = decode(client.get("/image/big.jpg?w=301&fmt=png").data)  # from the copy now
    third = decode(client.get("/image/big.jpg?w=300&fmt=png&q=81").data)
    expected = reference(image_root / "big.jpg", "DisplayP3-v4", 300)
    assert psnr(first, expected) >= 35 and psnr(third, expected) >= 35
    assert second.shape[1] == 301


def cmyk_jpeg(tmp_path: Path, name: str, size: tuple[int, int], embed: bool) -> Path:
    """Smooth ink coverage in all four channels, as a print workflow's JPEG holds it."""
    inks = cv2.resize(vivid(), size, interpolation=cv2.INTER_CUBIC)
    black = (255 - inks.max(axis=2)) // 2
    cmyk = Image.fromarray(np.dstack((255 - inks, black)).astype(np.uint8), "CMYK")
    path = tmp_path / name
    extra = {"icc_profile": (ICC / "CGATS001Compat-v2-micro.icc").read_bytes()} if embed else {}
    cmyk.save(path, "JPEG", quality=95, **extra)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("embed", [True, False])
@pytest.mark.parametrize("size", [(480, 320), (3200, 2000)])  # the large one shrinks on decode
def test_cmyk_jpegs_go_through_their_profile_or_a_press_one(
    tmp_path: Path, embed: bool, size: tuple[int, int]
) -> None:
    path = cmyk_jpeg(tmp_path, "ink.jpg", size, embed)
    assert probe(str(path)).channels == 4
    expected = reference(path, "CGATS001Compat-v2-micro", 200)  # the bundled default, when untagged
    ours = decode(render(str(path), ImageParams(width=200), "png").data)
    assert psnr(ours, expected) >= 35
    naive = cv2.resize(cv2.imread(str(path)), expected.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert psnr(naive, expected) < 30  # OpenCV's own CMYK conversion: the test can tell


def swapped_primaries() -> bytes:
    """sRGB with its red and blue colorants exchanged: what such a file stores as red is blue."""
    data = bytearray((ICC / "sRGB-v4.icc").read_bytes())
    (count,) = struct.unpack_from(">I", data, 128)
    tags = {}
    for i in range(count):
        signature, offset, size = struct.unpack_from(">4sII", data, 132 + 12 * i)
        tags[signature] = (i, offset, size)
    (red, *red_at), (blue, *blue_at) = tags[b"rXYZ"], tags[b"bXYZ"]
    struct.pack_into(">4sII", data, 132 + 12 * red, b"rXYZ", *blue_at)
    struct.pack_into(">4sII", data, 132 + 12 * blue, b"bXYZ", *red_at)
    data[84:100] = bytes(16)  # the profile ID no longer matches; zero means "not computed"
    return bytes(data)


@pytest.mark.parametrize("output", ["png", "jpeg", "webp"])
def test_a_profile_that_swaps_primaries_is_obeyed(tmp_path: Path, output: str) -> None:
    path = tmp_path / "swapped.png"
    Image.new("RGB", (64, 64), (255, 0, 0)).save(path, icc_profile=swapped_primaries())
    pixel = decode(render(str(path), ImageParams(quality=100), output).data)[32, 32, :3].astype(int)
    assert np.abs(pixel - (255, 0, 0)).max() <= 8  # BGR: blue, as the profile says


def test_sixteen_bit_originals_keep_their_precision_through_the_conversion(tmp_path: Path) -> None:
    """A dark 16-bit ramp in Rec.2020, whose curve is 2.9x less steep than sRGB's near black:
    rounded to 8 bits first it keeps 5 input levels and so at most 5 output levels, with gaps;
    converted from all 16 bits it keeps every output level between."""
    ramp = np.tile(np.linspace(0, 1000, 512).astype(np.uint16), (8, 1))
    stored = cv2.merge([ramp, ramp, ramp])
    icc = (ICC / "Rec2020-v4.icc").read_bytes()
    ok, png = cv2.imencode(".png", stored)
    path = tmp_path / "dark16.png"
    path.write_bytes(with_chunk(png.tobytes(), b"iCCP", b"Rec2020\0\0" + zlib.compress(icc)))
    out = decode(render(str(path), ImageParams(), "png").data)
    row = out[4, :, 1].astype(int)
    rounded = np.round(stored[:1] / 257).astype(np.uint8)  # what an 8-bit-first conversion starts from
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), "RGB", "RGB"
    )
    eight_bit_first = np.asarray(ImageCms.applyTransform(Image.fromarray(rounded), transform))[0, :, 1]
    assert len(np.unique(eight_bit_first)) <= 5
    assert len(np.unique(row)) >= 2 * len(np.unique(eight_bit_first))
    assert set(np.unique(row)) == set(range(row.min(), row.max() + 1))  # no gaps
    assert np.all(np.diff(row) >= 0)  # a ramp stays a ramp
    assert np.abs(row - eight_bit_first.astype(int)).max() <= 2  # and the same colours, finer


def test_matrix_shapers_are_read_and_everything_else_left_to_littlecms() -> None:
    for name in WIDE:
        assert matrix_shaper((ICC / f"{name}.icc").read_bytes()) is not None, name
    for other in ("sGrey-v4", "CGATS001Compat-v2-micro"):
        assert matrix_shaper((ICC / f"{other}.icc").read_bytes()) is None, other
    assert matrix_shaper(b"not a profile") is None

"""HEIF (HEIC) and JPEG XL originals: pixels, orientation applied once, colour profiles, alpha,
limits before decoding, cut files, the format served, and the same through HTTP.

The HEICs and the tagged JPEG XLs are in tests/data (encoded by tools the origin does not ship:
tests/data/heif/README.md, tests/data/jxl/README.md); the other JPEG XLs are encoded here.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import pi_heif
import pytest
from flask.testing import FlaskClient
from PIL import Image, ImageCms

from proxy import create_app
from proxy.errors import SourceTooLarge, UnsupportedImage
from proxy.formats import LEGACY, SOURCE, resolve
from proxy.limits import Limits
from proxy.params import ImageParams
from proxy.pipeline import render
from proxy.probe import Kind, probe
from proxy.settings import Settings

from .support.images import CUTS, DATA, cut, decode, photo, quadrants, write

HEIF, JXL, ICC = DATA / "heif", DATA / "jxl", DATA / "icc"
P3 = ICC / "DisplayP3-v4.icc"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.PSNR(np.ascontiguousarray(a), np.ascontiguousarray(b)))


def shown(image: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation as NumPy: the picture a viewer shows."""
    return {
        1: lambda im: im,
        2: lambda im: im[:, ::-1],
        3: lambda im: im[::-1, ::-1],
        4: lambda im: im[::-1],
        5: lambda im: im.transpose(1, 0, 2),
        6: lambda im: np.rot90(im, -1),
        7: lambda im: im.transpose(1, 0, 2)[::-1, ::-1],
        8: lambda im: np.rot90(im, 1),
    }[orientation](image)


def rendered(path: Path | str, output: str = "png", **params: object) -> np.ndarray:
    return decode(render(str(path), ImageParams(**params), output).data)  # type: ignore[arg-type]


def jxl(image: np.ndarray, **options: object) -> bytes:
    """``image`` (BGR, as the tests make them) as imagecodecs writes a JPEG XL."""
    rgb = image[..., [2, 1, 0, 3][: image.shape[2]]] if image.ndim == 3 else image
    return bytes(imagecodecs.jpegxl_encode(np.ascontiguousarray(rgb), **options))


def to_srgb(rgb: np.ndarray, profile: Path) -> np.ndarray:
    """LittleCMS's own conversion of RGB pixels in ``profile`` to sRGB, as BGR."""
    converted = ImageCms.profileToProfile(
        Image.fromarray(rgb),
        ImageCms.ImageCmsProfile(str(profile)),
        ImageCms.createProfile("sRGB"),
        ImageCms.Intent.PERCEPTUAL,
        outputMode="RGB",
    )
    return cv2.cvtColor(np.asarray(converted), cv2.COLOR_RGB2BGR)


def with_ispe(heic: bytes, width: int, height: int) -> bytes:
    """``heic`` whose (first) ispe box declares another coded size."""
    at = heic.index(b"ispe") + 8  # the type, then version and flags
    return heic[:at] + struct.pack(">II", width, height) + heic[at + 8 :]


def refuse_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded an original the limits refuse")

    monkeypatch.setattr(pi_heif, "open_heif", never)
    monkeypatch.setattr(imagecodecs, "jpegxl_decode", never)


# --- HEIF -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size", "alpha", "depth", "profile"),
    [
        ("photo", (64, 48), False, 8, False),
        ("alpha", (64, 48), True, 8, False),
        ("p3", (64, 48), False, 8, True),
        ("deep", (64, 48), False, 10, False),
        ("orientation-6", (48, 64), False, 8, False),  # irot turns it: the size as decoded
        ("several", (64, 48), False, 8, False),  # the primary image's, not the first's
    ],
)
def test_a_heic_header_declares_its_primary_image(
    name: str, size: tuple[int, int], alpha: bool, depth: int, profile: bool
) -> None:
    info = probe(str(HEIF / f"{name}.heic"))
    assert (info.format, (info.width, info.height), info.orientation) == ("heif", size, 1)
    assert (info.alpha, info.depth, info.profile is not None) == (alpha, depth, profile)
    assert info.coded_pixels == 64 * 64  # x265 codes whole blocks; the clean aperture crops them


@pytest.mark.parametrize("name", ["photo", "deep"])
def test_a_heic_decodes_to_the_picture_encoded(name: str) -> None:
    """8 bits, and 10 (decoded to 16, rounded to 8 at the end)."""
    out = rendered(HEIF / f"{name}.heic")
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert psnr(out, photo(64, 48)) > 31  # x265 at quality 90 on a noisy picture: 33 dB


def test_a_heic_is_resized(tmp_path: Path) -> None:
    out = rendered(HEIF / "photo.heic", width=32)
    assert out.shape == (24, 32, 3)
    assert psnr(out, cv2.resize(photo(64, 48), (32, 24), interpolation=cv2.INTER_AREA)) > 31


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_heics_rotation_and_mirroring_are_applied_once(orientation: int) -> None:
    """libheif applies irot and imir; the EXIF orientation these files also carry is not applied
    again."""
    out = rendered(HEIF / f"orientation-{orientation}.heic")
    expected = shown(quadrants(64, 48), orientation)
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).max() < 24  # coding noise at the quadrants' edges


def test_a_heics_exif_orientation_alone_is_ignored(tmp_path: Path) -> None:
    """HEIF's rule (and libheif's, and browsers'): only irot/imir turn the image."""
    data = (HEIF / "orientation-6.heic").read_bytes()
    at = data.index(b"irot") + 4
    path = write(tmp_path, "exif-only.heic", data[:at] + b"\0" + data[at + 1 :])  # a turn of 0
    assert b"Exif" in data and (probe(path).width, probe(path).height) == (64, 48)
    out = rendered(path)
    assert np.abs(out.astype(int) - quadrants(64, 48)).max() < 24


def test_a_heic_of_several_images_serves_its_primary() -> None:
    out = rendered(HEIF / "several.heic")
    assert out.shape == (48, 64, 3)  # the first image is 32x24
    assert psnr(out, photo(64, 48)) > 31


@pytest.mark.parametrize("output", ["png", "webp"])
def test_a_heics_alpha_is_kept(output: str) -> None:
    out = rendered(HEIF / "alpha.heic", output, quality=100)
    assert out.shape == (48, 64, 4)
    ramp = np.tile(np.linspace(0, 255, 64), (48, 1))
    assert np.abs(out[..., 3].astype(int) - ramp).mean() < 3


def test_a_heic_with_alpha_is_flattened_for_jpeg() -> None:
    assert rendered(HEIF / "alpha.heic", "jpeg").shape == (48, 64, 3)


def test_a_heics_profile_is_converted_to_srgb() -> None:
    heif = pi_heif.open_heif((HEIF / "p3.heic").read_bytes())
    raw = np.array(heif)  # as stored, RGB; a copy (pi_heif's array dies with its file object)
    out = rendered(HEIF / "p3.heic")
    assert psnr(out, to_srgb(raw, P3)) > 40
    assert np.abs(out.astype(int) - raw[..., ::-1]).mean() > 4  # the profile made a difference


def test_a_heic_declaring_a_huge_size_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_decoding(monkeypatch)
    bomb = write(tmp_path, "bomb.heic", with_ispe((HEIF / "photo.heic").read_bytes(), 100_000, 100_000))
    with pytest.raises(SourceTooLarge):
        render(bomb, ImageParams(width=10), "jpeg")


def test_a_small_clean_aperture_does_not_hide_a_huge_coded_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crop keeps 64x48, but the decoder would allocate the coded 20000x20000 first."""
    refuse_decoding(monkeypatch)
    data = with_ispe((HEIF / "photo.heic").read_bytes(), 20_000, 20_000)
    info = probe(write(tmp_path, "lying.heic", data))
    assert (info.width, info.height) == (64, 48)
    with pytest.raises(SourceTooLarge):
        render(write(tmp_path, "lying.heic", data), ImageParams(width=10), "jpeg", info=info)


def test_a_heic_over_the_limits_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_decoding(monkeypatch)
    with pytest.raises(SourceTooLarge):
        render(str(HEIF / "photo.heic"), ImageParams(), "jpeg", Limits(max_source_pixels=64 * 48 - 1))


@pytest.mark.parametrize("where", CUTS)
def test_a_cut_heic_is_refused(tmp_path: Path, where: str) -> None:
    path = write(tmp_path, "cut.heic", cut((HEIF / "photo.heic").read_bytes(), where))
    with pytest.raises(UnsupportedImage, match="truncated HEIF"):
        render(path, ImageParams(), "jpeg")


def test_a_heic_whose_coded_image_is_garbage_is_refused(tmp_path: Path) -> None:
    data = (HEIF / "photo.heic").read_bytes()
    at = data.index(b"mdat") + 4
    garbage = np.random.default_rng(1).bytes(len(data) - at)
    path = write(tmp_path, "garbage.heic", data[:at] + garbage)
    with pytest.raises(UnsupportedImage, match="could not decode"):
        render(path, ImageParams(), "jpeg")


@pytest.mark.parametrize(
    "data",
    [
        b"\0\0\0\x18ftypisom\0\0\0\0isommp41" + bytes(64),  # a video
        (HEIF / "photo.heic").read_bytes().replace(b"hvc1", b"av01"),  # mif1 items of another codec
    ],
    ids=["mp4", "av01-items"],
)
def test_iso_bmff_that_is_not_hevc_heif_is_unsupported(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UnsupportedImage, match="not an image in a supported format"):
        probe(write(tmp_path, "other.heic", data))


# --- JPEG XL ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "floor"), [({"level": 90}, 31), ({"lossless": True}, 99)], ids=["lossy", "lossless"]
)
def test_a_jxl_decodes_to_the_picture_encoded(tmp_path: Path, options: dict[str, object], floor: int) -> None:
    path = write(tmp_path, "photo.jxl", jxl(photo(96, 64), **options))
    info = probe(path)
    assert (info.format, info.width, info.height, info.orientation, info.alpha) == ("jxl", 96, 64, 1, False)
    out = rendered(path)
    assert out.shape == (64, 96, 3)
    assert psnr(out, photo(96, 64)) > floor


@pytest.mark.parametrize("bits", [12, 16])
def test_a_jxl_of_more_than_8_bits_keeps_them_through_its_profile(tmp_path: Path, bits: int) -> None:
    """imagecodecs writes samples of more than 8 bits as linear light (and libjxl decodes 12 bits
    in 16-bit samples, unscaled): the result is their sRGB encoding, within a level."""
    linear = (photo(96, 64).astype(np.uint32) * ((1 << bits) - 1) // 255).astype(np.uint16)
    path = write(tmp_path, f"{bits}.jxl", jxl(linear, lossless=True, bitspersample=bits))
    assert probe(path).depth == bits
    out = rendered(path)
    level = photo(96, 64) / 255
    encoded = np.where(level <= 0.0031308, 12.92 * level, 1.055 * level ** (1 / 2.4) - 0.055)
    assert out.dtype == np.uint8
    assert np.abs(out - np.round(encoded * 255)).max() <= 1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_jxls_orientation_is_applied_once(orientation: int) -> None:
    info = probe(str(JXL / f"orientation-{orientation}.jxl"))
    assert (info.orientation, info.width, info.height) == (orientation, 64, 48)  # as stored
    out = rendered(JXL / f"orientation-{orientation}.jxl")
    expected = shown(quadrants(64, 48), orientation)
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).mean() < 6


def test_a_turned_jxl_is_resized_in_its_frame() -> None:
    assert rendered(JXL / "orientation-6.jxl", width=24).shape == (32, 24, 3)


@pytest.mark.parametrize("name", ["p3", "p3-lossless"])
def test_a_jxls_colour_space_is_converted_to_srgb(name: str) -> None:
    """Lossy: Display P3 named in the header (libjxl writes its profile); lossless: the ICC
    profile embedded. Both decode to P3 pixels, which become sRGB as LittleCMS converts them."""
    path = JXL / f"{name}.jxl"
    raw = imagecodecs.jpegxl_decode(path.read_bytes())
    out = rendered(path)
    assert psnr(out, to_srgb(raw, P3)) > 40
    assert np.abs(out.astype(int) - raw[..., ::-1]).mean() > 4


@pytest.mark.parametrize("output", ["png", "webp"])
def test_a_jxls_alpha_is_kept(tmp_path: Path, output: str) -> None:
    ramp = np.tile(np.linspace(0, 255, 96).astype(np.uint8), (64, 1))
    path = write(tmp_path, "alpha.jxl", jxl(np.dstack((photo(96, 64), ramp)), lossless=True))
    assert probe(path).alpha
    out = rendered(path, output, quality=100)
    assert out.shape == (64, 96, 4)
    assert np.abs(out[..., 3].astype(int) - ramp).mean() < 3


def test_an_animated_jxl_serves_its_first_frame(tmp_path: Path) -> None:
    frames = np.stack([photo(96, 64, seed) for seed in range(3)])[..., ::-1]
    path = write(tmp_path, "animated.jxl", bytes(imagecodecs.jpegxl_encode(np.ascontiguousarray(frames))))
    assert probe(path).frames == 1
    assert psnr(rendered(path, "webp", quality=100), photo(96, 64, 0)) > 30


def test_a_jxl_over_the_limits_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "photo.jxl", jxl(photo(96, 64), level=90))
    refuse_decoding(monkeypatch)
    with pytest.raises(SourceTooLarge):
        render(path, ImageParams(), "jpeg", Limits(max_source_pixels=96 * 64 - 1))


@pytest.mark.parametrize("where", CUTS)
def test_a_cut_jxl_is_refused_as_truncated(tmp_path: Path, where: str) -> None:
    """A JPEG XL declares no length: libjxl, asked to decode a cut one, asks for more input
    instead of filling what is missing."""
    path = write(tmp_path, "cut.jxl", cut(jxl(photo(96, 64), level=90), where))
    with pytest.raises(UnsupportedImage, match="truncated JXL"):
        render(path, ImageParams(), "jpeg")


def test_a_jxl_whose_codestream_is_garbage_is_refused(tmp_path: Path) -> None:
    data = jxl(photo(96, 64), level=90)
    path = write(tmp_path, "garbage.jxl", data[:40] + bytes(range(256)) * 4)
    with pytest.raises(UnsupportedImage):
        render(path, ImageParams(), "jpeg")


# --- the format served, and HTTP -----------------------------------------------------------------


@pytest.mark.parametrize("source", ["heif", "jxl"])
@pytest.mark.parametrize(("alpha", "expected"), [(False, "jpeg"), (True, "png")])
def test_without_fmt_heif_and_jxl_become_jpeg_or_png_for_alpha(
    source: str, alpha: bool, expected: str
) -> None:
    """What a browser shows, as fmt=auto gives one that takes neither AVIF nor WebP."""
    kind = Kind(source, False, alpha)
    assert resolve(SOURCE, kind) == resolve(LEGACY, kind) == expected
    assert resolve("jxl", kind) == "jxl"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    base = tmp_path_factory.mktemp("heif-jxl")
    root = base / "images"
    root.mkdir()
    heic = (HEIF / "photo.heic").read_bytes()
    files = {
        "photo.heic": heic,
        "alpha.heic": (HEIF / "alpha.heic").read_bytes(),
        "cut.heic": cut(heic, "half"),
        "bomb.heic": with_ispe(heic, 100_000, 100_000),
        "photo.jxl": jxl(photo(96, 64), level=90),
        "turned.jxl": (JXL / "orientation-6.jxl").read_bytes(),
        "cut.jxl": cut(jxl(photo(96, 64), level=90), "half"),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    settings = Settings(image_root=root, cache_dir=base / "cache", max_age=3600)
    return create_app(settings).test_client()


@pytest.mark.parametrize(
    ("url", "mime", "shape"),
    [
        ("/image/photo.heic?w=32", "image/jpeg", (24, 32, 3)),
        ("/image/alpha.heic?w=32", "image/png", (24, 32, 4)),
        ("/image/photo.heic?w=32&fmt=webp", "image/webp", (24, 32, 3)),
        ("/image/photo.jxl?w=48", "image/jpeg", (32, 48, 3)),
        ("/image/turned.jxl?h=32&fmt=png", "image/png", (32, 24, 3)),
    ],
)
def test_heif_and_jxl_through_http(client: FlaskClient, url: str, mime: str, shape: tuple[int, ...]) -> None:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == mime
    assert decode(response.data).shape == shape


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/image/cut.heic?w=32", 415, "truncated HEIF"),
        ("/image/cut.jxl?w=32", 415, "truncated JXL"),
        ("/image/bomb.heic?w=32", 413, "coded in 10000000000 pixels"),
    ],
)
def test_heif_and_jxl_refusals_through_http(client: FlaskClient, url: str, status: int, words: str) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert words in response.get_json()["error"]

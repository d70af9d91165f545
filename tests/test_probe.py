"""The header reader: formats by magic bytes, declared sizes, EXIF orientation."""

import io
import os
import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from proxy.errors import NotFound, UnsupportedImage
from proxy.formats import FORMATS
from proxy.probe import ends as probing
from proxy.probe import probe

from .support.images import (
    CUTS,
    cut,
    encode,
    exif_orientation_segment,
    originals,
    photo,
    with_chunk,
    with_exif_orientation,
    with_exif_thumbnail,
    write,
)

IMAGE = np.full((30, 50, 3), 90, np.uint8)
PNG_PALETTE_TRNS = Path(__file__).parent / "data" / "pngsuite" / "tbbn3p08.png"
PNG_GREY_TRNS = Path(__file__).parent / "data" / "pngsuite" / "tbbn0g04.png"
PNGSUITE = sorted((Path(__file__).parent / "data" / "pngsuite").glob("[!x]*.png"))


@pytest.mark.parametrize(
    ("extension", "name"),
    [
        (".jpg", "jpeg"),
        (".png", "png"),
        (".webp", "webp"),
        (".bmp", "bmp"),
        (".tiff", "tiff"),
        (".gif", "gif"),
    ],
)
def test_format_and_size_from_the_header(tmp_path: Path, extension: str, name: str) -> None:
    path = tmp_path / f"image{extension}"
    path.write_bytes(encode(IMAGE, extension))
    info = probe(str(path))
    assert (info.format, info.width, info.height, info.orientation) == (name, 50, 30, 1)


def test_lossless_and_alpha_webp(tmp_path: Path) -> None:
    path = tmp_path / "a.webp"
    path.write_bytes(encode(np.zeros((31, 47, 4), np.uint8), ".webp", cv2.IMWRITE_WEBP_QUALITY, 101))
    info = probe(str(path))
    assert (info.format, info.width, info.height) == ("webp", 47, 31)


def test_jpeg_components(tmp_path: Path) -> None:
    path = tmp_path / "gray.jpg"
    path.write_bytes(encode(np.zeros((8, 8), np.uint8), ".jpg"))
    assert probe(str(path)).channels == 1
    path.write_bytes(encode(IMAGE, ".jpg"))
    assert probe(str(path)).channels == 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / "o.jpg"
    path.write_bytes(with_exif_orientation(encode(IMAGE, ".jpg"), orientation))
    info = probe(str(path))
    assert info.orientation == orientation
    assert info.transposed == (orientation >= 5)
    assert (info.width, info.height) == (50, 30)  # as stored


def test_png_exif_chunk(tmp_path: Path) -> None:
    exif = exif_orientation_segment(6)[4 + 6 :]  # the bare TIFF structure
    path = tmp_path / "o.png"
    path.write_bytes(with_chunk(encode(IMAGE, ".png"), b"eXIf", exif))
    assert probe(str(path)).orientation == 6


@pytest.mark.parametrize(
    "content",
    [b"", b"hello world, not an image", b"P6\n10 10\n255\n" + bytes(300), b"\x00" * 64, b"\xff\xd8\xff"],
)
def test_unknown_or_truncated_is_unsupported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(UnsupportedImage):
        probe(str(path))


def test_truncated_png_header(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(encode(IMAGE, ".png")[:20])
    with pytest.raises(UnsupportedImage):
        probe(str(path))


def test_vanished_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        probe(str(tmp_path / "gone.png"))


@pytest.mark.parametrize(
    ("image", "channels", "depth"),
    [
        (np.zeros((8, 8), np.uint8), 1, 8),
        (np.zeros((8, 8, 3), np.uint16), 3, 16),
        (np.zeros((8, 8, 4), np.uint8), 4, 8),
        (np.zeros((8, 8), np.uint16), 1, 16),
    ],
)
def test_png_channels_and_depth(tmp_path: Path, image: np.ndarray, channels: int, depth: int) -> None:
    path = tmp_path / "p.png"
    path.write_bytes(encode(image, ".png"))
    info = probe(str(path))
    assert (info.channels, info.depth) == (channels, depth)
    path.write_bytes(with_chunk(encode(image, ".png"), b"tRNS", b"\0\0" * (3 if channels == 3 else 1)))
    if channels in (1, 3):  # a transparent colour key is an alpha channel
        assert probe(str(path)).channels == channels + 1


def _rgba(opaque: bool) -> np.ndarray:
    image = np.full((24, 32, 4), 200, np.uint8)
    image[..., 3] = 255
    if not opaque:
        image[:8, :8, 3] = 0
    return image


def _pillow(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    mode = "RGBA" if image.shape[2] == 4 else "RGB"
    PILImage.fromarray(np.ascontiguousarray(image), mode).save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "alpha"),
    [
        ("png rgba", lambda: encode(_rgba(False), ".png"), True),
        ("png rgb", lambda: encode(_rgba(False)[..., :3], ".png"), False),
        ("png palette + tRNS", lambda: PNG_PALETTE_TRNS.read_bytes(), True),
        ("png grey + tRNS", lambda: PNG_GREY_TRNS.read_bytes(), True),
        ("jpeg", lambda: encode(_rgba(True)[..., :3], ".jpg"), False),
        ("webp lossless rgba", lambda: encode(_rgba(False), ".webp", cv2.IMWRITE_WEBP_QUALITY, 101), True),
        ("webp lossy rgba", lambda: encode(_rgba(False), ".webp", cv2.IMWRITE_WEBP_QUALITY, 80), True),
        ("webp lossy rgb", lambda: encode(_rgba(False)[..., :3], ".webp"), False),
        (
            "webp lossless rgb",
            lambda: encode(_rgba(False)[..., :3], ".webp", cv2.IMWRITE_WEBP_QUALITY, 101),
            False,
        ),
        ("tiff rgba", lambda: encode(_rgba(False), ".tiff"), True),
        ("tiff rgb", lambda: encode(_rgba(False)[..., :3], ".tiff"), False),
        ("bmp 32", lambda: encode(_rgba(False), ".bmp"), True),
        ("bmp 24", lambda: encode(_rgba(False)[..., :3], ".bmp"), False),
        ("gif transparent", lambda: _pillow(_rgba(False), "GIF"), True),
        ("gif opaque", lambda: _pillow(_rgba(False)[..., :3], "GIF"), False),
        *(
            [
                ("avif rgba", lambda: encode(_rgba(False), ".avif"), True),
                ("avif rgb", lambda: encode(_rgba(False)[..., :3], ".avif"), False),
            ]
            if "avif" in FORMATS
            else []
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_declared_transparency(tmp_path: Path, name: str, data: Callable[[], bytes], alpha: bool) -> None:
    """What decides PNG or JPEG, before decoding, for a client that takes neither AVIF nor WebP:
    every file here whose pixels have transparency must declare it, or a JPEG would lose it."""
    path = tmp_path / "image"
    path.write_bytes(data())
    assert probe(str(path)).kind.alpha is alpha


# --- files that end before their image does ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(originals()))
def test_every_original_whole_is_accepted(tmp_path: Path, name: str) -> None:
    probe(write(tmp_path, "original", originals()[name]))


@pytest.mark.parametrize("where", CUTS)
@pytest.mark.parametrize("name", sorted(name for name in originals() if not name.endswith(".jxl")))
def test_every_original_cut_short_is_refused(tmp_path: Path, name: str, where: str) -> None:
    """A cut TIFF written by OpenCV loses its directory, which comes last: "malformed" there. (A
    JPEG XL declares no length: libjxl refuses a cut one while decoding, tests/test_truncated.py.)"""
    with pytest.raises(UnsupportedImage, match="truncated|malformed TIFF"):
        probe(write(tmp_path, "original", cut(originals()[name], where)))


JPEG = encode(photo(96, 64), ".jpg")
THUMBNAIL = encode(photo(24, 16, seed=3), ".jpg")


@pytest.mark.parametrize(
    "data",
    [
        JPEG + b"\0" * 5000,  # zero padding, longer than the tail read
        JPEG + b"PK\x03\x04" + bytes(200),  # an archive appended
        # A motion photo's video, or Samsung's SEFT trailer: FFDA after the last FFD9, by chance
        JPEG + b"\0\0\0\x18ftypmp42\xff\xd9" + bytes(range(256)) * 40 + b"\xff\xda\x00\x0c" + bytes(99),
        JPEG + encode(photo(32, 24), ".jpg")[:500],  # MPF: a second image, cut; the first is whole
        with_exif_thumbnail(JPEG, THUMBNAIL),
        with_exif_thumbnail(JPEG, THUMBNAIL) + b"SEFH" + bytes(100) + b"SEFT",
    ],
    ids=["zero padding", "zip", "video trailer", "cut second image", "EXIF thumbnail", "thumbnail+trailer"],
)
def test_a_whole_jpeg_with_more_after_its_end_is_accepted(tmp_path: Path, data: bytes) -> None:
    assert probe(write(tmp_path, "original", data)).width == 96


@pytest.mark.parametrize("where", CUTS)
def test_a_thumbnails_end_does_not_end_the_image(tmp_path: Path, where: str) -> None:
    """The thumbnail's SOS and EOI lie inside its APP1 segment, which the walk skips whole."""
    data = with_exif_thumbnail(JPEG, THUMBNAIL)
    with pytest.raises(UnsupportedImage, match="truncated"):
        probe(write(tmp_path, "original", cut(data, where) + bytes(64)))  # and zero padding hides nothing


def test_a_whole_jpeg_or_png_is_known_from_its_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path: one small read of the end, no walk."""

    def walked(*_: object) -> None:
        raise AssertionError("walked a whole file")

    monkeypatch.setattr(probing, "_next_jpeg_marker", walked)
    probe(write(tmp_path, "original", originals()["progressive.jpg"]))
    probe(write(tmp_path, "original", JPEG + bytes(100)))
    reads: list[int] = []
    monkeypatch.setattr(
        probing, "_read_at", lambda fd, at, size: reads.append(size) or os.pread(fd, size, at)
    )
    probe(write(tmp_path, "original", originals()["still.png"]))
    assert reads == [12]


def test_png_bytes_after_iend_are_accepted_a_missing_iend_is_not(tmp_path: Path) -> None:
    png = originals()["still.png"]
    assert probe(write(tmp_path, "original", png + b"trailing bytes" * 100)).width == 96
    with pytest.raises(UnsupportedImage, match="truncated"):
        probe(write(tmp_path, "original", png[:-12]))  # every chunk whole, but no IEND


def test_a_webp_shorter_than_its_riff_size_is_refused(tmp_path: Path) -> None:
    webp = originals()["lossy.webp"]
    assert (
        probe(write(tmp_path, "original", webp + bytes(10))).width == 96
    )  # more than declared: as libwebp, ignored
    longer = webp[:4] + struct.pack("<I", len(webp) - 8 + 2) + webp[8:]
    with pytest.raises(UnsupportedImage, match="truncated"):
        probe(write(tmp_path, "original", longer))


@pytest.mark.skipif("avif" not in FORMATS, reason="this OpenCV build writes no AVIF")
def test_an_avif_box_past_the_end_is_refused(tmp_path: Path) -> None:
    avif = originals()["still.avif"]
    assert probe(write(tmp_path, "original", avif + struct.pack(">I4s", 0, b"free") + bytes(9))).width == 96
    with pytest.raises(UnsupportedImage, match="truncated"):
        probe(write(tmp_path, "original", avif + struct.pack(">I4s", 40, b"free") + bytes(9)))
    with pytest.raises(UnsupportedImage, match="truncated"):
        probe(write(tmp_path, "original", avif + b"\0\0\0"))  # a box header cut short


def test_a_gif_cut_between_frames_is_refused(tmp_path: Path) -> None:
    gif = originals()["animated.gif"]
    with pytest.raises(UnsupportedImage, match="truncated"):
        probe(write(tmp_path, "original", gif[:-1]))  # every frame whole, no trailer
    assert probe(write(tmp_path, "original", gif + b"after the trailer")).frames == 3


def test_a_bmp_without_its_last_rows_is_refused(tmp_path: Path) -> None:
    bmp = encode(photo(30, 20), ".bmp")  # 90 bytes a row, padded to 92
    assert probe(write(tmp_path, "original", bmp[:-2])).width == 30  # the last row's padding is not needed
    with pytest.raises(UnsupportedImage, match="truncated"):
        probe(write(tmp_path, "original", bmp[:-3]))


def test_a_tiff_strip_past_the_end_is_refused(tmp_path: Path) -> None:
    tiff = originals()["directory-first.tiff"]
    assert int.from_bytes(tiff[4:8], "little") == 8  # the directory first, the strips after
    assert probe(write(tmp_path, "original", tiff + bytes(10))).width == 96
    with pytest.raises(UnsupportedImage, match="truncated"):
        probe(write(tmp_path, "original", tiff[: len(tiff) - 100]))


@pytest.mark.parametrize("path", PNGSUITE, ids=lambda path: path.stem)
def test_every_valid_pngsuite_file_is_whole(path: Path) -> None:
    probe(str(path))

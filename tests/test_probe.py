"""The header reader: formats by magic bytes, declared sizes, EXIF orientation."""

import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from proxy.errors import NotFound, UnsupportedImage
from proxy.formats import FORMATS
from proxy.probe import probe

from .images import encode, exif_orientation_segment, with_chunk, with_exif_orientation

IMAGE = np.full((30, 50, 3), 90, np.uint8)
PNG_PALETTE_TRNS = Path(__file__).parent / "data" / "pngsuite" / "tbbn3p08.png"
PNG_GREY_TRNS = Path(__file__).parent / "data" / "pngsuite" / "tbbn0g04.png"


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

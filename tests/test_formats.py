import imagecodecs
import numpy as np
import pytest

from proxy.formats import FORMATS, LEGACY, SOURCE, mime_of, negotiate, resolve
from proxy.probe import Kind


def accept(*pairs: tuple[str, float]) -> str:
    return ", ".join(f"{name};q={quality}" for name, quality in pairs)


AVIF_WRITABLE = "avif" in FORMATS


def test_explicit_format_ignores_accept() -> None:
    assert negotiate("png", accept(("image/webp", 1))) == "png"
    assert negotiate(None, accept(("image/webp", 1))) == SOURCE


def test_auto_prefers_avif_then_webp() -> None:
    both = accept(("image/avif", 1), ("image/webp", 1), ("*/*", 0.8))
    assert negotiate("auto", both) == ("avif" if AVIF_WRITABLE else "webp")
    assert negotiate("auto", accept(("image/webp", 0.5), ("*/*", 0.8))) == "webp"


@pytest.mark.parametrize(
    "header",
    [
        accept(("*/*", 1)),
        accept(("image/*", 1)),
        accept(("image/webp", 0), ("image/avif", 0), ("*/*", 1)),
        accept(("text/html", 1)),
        accept(),
    ],
)
def test_wildcards_and_refusals_never_select_modern_formats(header: str) -> None:
    assert negotiate("auto", header) == LEGACY


@pytest.mark.parametrize(
    ("target", "kind", "frame", "expected"),
    [
        (LEGACY, Kind("png", animated=False, alpha=True), None, "png"),
        (LEGACY, Kind("png", animated=False, alpha=False), None, "jpeg"),
        (LEGACY, Kind("gif", animated=True, alpha=True), None, "png"),  # legacy clients get a still
        (LEGACY, Kind("jpeg", animated=False, alpha=False), None, "jpeg"),
        (SOURCE, Kind("jpeg", animated=False, alpha=False), None, "jpeg"),
        (SOURCE, Kind("webp", animated=False, alpha=True), None, "webp"),
        (SOURCE, Kind("bmp", animated=False, alpha=False), None, "png"),
        (SOURCE, Kind("tiff", animated=False, alpha=True), None, "png"),
        (SOURCE, Kind("avif", animated=False, alpha=False), None, "png"),
        (SOURCE, Kind("gif", animated=True, alpha=False), None, "webp"),  # an animation stays one
        (SOURCE, Kind("gif", animated=True, alpha=False), 2, "png"),  # one frame of it: a still
        (SOURCE, Kind("png", animated=True, alpha=False), 0, "png"),
        ("webp", Kind("png", animated=False, alpha=True), None, "webp"),
        ("jpeg", Kind("png", animated=False, alpha=True), None, "jpeg"),
    ],
)
def test_resolve_names_the_format_from_the_header(
    target: str, kind: Kind, frame: int | None, expected: str
) -> None:
    assert resolve(target, kind, frame) == expected


def test_mime_types() -> None:
    assert {f.name: f.mime for f in FORMATS.values()}.items() >= {
        "png": "image/png",
        "jpeg": "image/jpeg",
        "webp": "image/webp",
    }.items()


def test_jpeg_xl_is_known_by_its_first_bytes() -> None:
    """What the cache reads a stored variant's type from: a bare codestream and the container."""
    pixels = np.full((16, 24, 3), 120, np.uint8)
    assert mime_of(imagecodecs.jpegxl_encode(pixels, level=80)[:12]) == "image/jxl"
    assert mime_of(imagecodecs.jpegxl_encode(pixels, level=80, usecontainer=True)[:12]) == "image/jxl"
    assert mime_of(b"\xff\xd8\xff\xe0" + bytes(8)) == "image/jpeg"

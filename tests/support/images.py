"""Images the tests encode themselves, helpers to read responses back, and to write or cut originals."""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
from PIL import Image as PILImage

DATA = Path(__file__).parent.parent / "data"  # tests/data: what the tests cannot encode themselves


def encode(image: np.ndarray, extension: str, *flags: int) -> bytes:
    ok, buffer = cv2.imencode(extension, image, list(flags))
    assert ok, extension
    return buffer.tobytes()


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "response is not a decodable image"
    return image


def write(directory: Path, name: str, data: bytes) -> str:
    """``data`` as the file ``name`` in ``directory``; its path, as the pipeline takes it."""
    path = directory / name
    path.write_bytes(data)
    return str(path)


# Where an original is cut short: a fraction of its bytes kept, or -1 for all but the last byte.
CUTS = {"half": 0.5, "nine-tenths": 0.9, "last-byte": -1}  # names fit in file names and URLs


def cut(data: bytes, where: str) -> bytes:
    """``data`` truncated as ``CUTS[where]`` says: an upload or a copy that stopped early."""
    fraction = CUTS[where]
    return data[:-1] if fraction < 0 else data[: int(len(data) * fraction)]


def exif_orientation_segment(orientation: int) -> bytes:
    """A JPEG APP1 segment carrying only an EXIF orientation tag."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    return jpeg[:2] + exif_orientation_segment(orientation) + jpeg[2:]


def with_exif_thumbnail(jpeg: bytes, thumbnail: bytes) -> bytes:
    """``jpeg`` with an EXIF APP1 segment holding a JPEG ``thumbnail`` as cameras write it (IFD0,
    then IFD1 pointing at it): an SOS and an EOI before the main image's."""
    ifd0 = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 1, 0) + struct.pack(">I", 26)
    ifd1 = (
        struct.pack(">H", 2)
        + struct.pack(">HHII", 0x0201, 4, 1, 56)
        + struct.pack(">HHII", 0x0202, 4, 1, len(thumbnail))
    )
    payload = b"Exif\0\0" + b"MM\x00*" + struct.pack(">I", 8) + ifd0 + ifd1 + b"\0\0\0\0" + thumbnail
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def animation(extension: str, frames: list[np.ndarray]) -> bytes:
    """An animation of ``frames``, 100 ms each, as OpenCV writes it (.gif, .webp, .png, .avif)."""
    animated = cv2.Animation()
    animated.frames = frames
    animated.durations = [100] * len(frames)
    ok, buffer = cv2.imencodeanimation(extension, animated)
    assert ok, extension
    return bytes(buffer.tobytes())


@functools.cache
def originals() -> dict[str, bytes]:
    """A small original in every format the proxy reads, still and animated, by file name: as
    OpenCV writes them (AVIF where this build does), a TIFF with its directory first (Pillow's
    layout; OpenCV's comes last), a JPEG XL as imagecodecs writes it, and a HEIC from tests/data
    (nothing here encodes HEIF). Made once: do not change the dict."""
    image = photo(96, 64)
    alpha = np.dstack((image, np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))))
    tiff = io.BytesIO()
    PILImage.fromarray(image[..., ::-1]).save(tiff, "TIFF")
    files = {
        "baseline.jpg": encode(image, ".jpg"),
        "progressive.jpg": encode(image, ".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "restarts.jpg": encode(image, ".jpg", cv2.IMWRITE_JPEG_RST_INTERVAL, 1),
        "still.png": encode(alpha, ".png"),
        "lossy.webp": encode(image, ".webp"),
        "lossless.webp": encode(alpha, ".webp", cv2.IMWRITE_WEBP_QUALITY, 101),
        "still.gif": encode(image, ".gif"),
        "still.bmp": encode(image, ".bmp"),
        "opencv.tiff": encode(image, ".tiff"),
        "directory-first.tiff": tiff.getvalue(),
        "still.jxl": imagecodecs.jpegxl_encode(np.ascontiguousarray(image[..., ::-1]), level=90),
        "still.heic": (DATA / "heif" / "photo.heic").read_bytes(),
    }
    extensions = [".gif", ".webp", ".png"]
    if cv2.haveImageWriter(".avif"):
        files["still.avif"] = encode(image, ".avif")
        extensions.append(".avif")
    for extension in extensions:
        files[f"animated{extension}"] = animation(extension, [photo(48, 32, seed) for seed in range(3)])
    return files


def with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """``png`` with a chunk inserted right after its IHDR (8 + 25 bytes in)."""
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return png[:33] + chunk + png[33:]


def quadrants(width: int, height: int) -> np.ndarray:
    """BGR image: top-left red, top-right green, bottom-left blue, bottom-right white."""
    image = np.zeros((height, width, 3), np.uint8)
    hw, hh = width // 2, height // 2
    image[:hh, :hw] = (0, 0, 255)
    image[:hh, hw:] = (0, 255, 0)
    image[hh:, :hw] = (255, 0, 0)
    image[hh:, hw:] = (255, 255, 255)
    return image


def photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like BGR image: smooth gradients plus a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    b = 128 + 100 * np.sin(x / width * 6.0)
    g = 128 + 100 * np.cos(y / height * 5.0)
    r = 128 + 80 * np.sin((x + y) / (width + height) * 9.0)
    image = np.dstack((b, g, r)) + rng.normal(0, 6, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def vivid(width: int = 480, height: int = 320) -> np.ndarray:
    """Saturated, smooth RGB content, where a wide-gamut profile changes the most."""
    image = cv2.cvtColor(photo(width, height, seed=11), cv2.COLOR_BGR2RGB)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hsv[..., 1] = np.maximum(hsv[..., 1], 200)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def large_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Like ``photo`` at camera sizes (24 MP), made in a fraction of the time: upscaled, then noised."""
    image = cv2.resize(photo(width // 8, height // 8, seed), (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.empty_like(image)
    cv2.randn(noise, (0, 0, 0), (6, 6, 6))
    return cv2.add(image, noise)


def subject_scene(seed: int) -> tuple[np.ndarray, tuple[int, int]]:
    """A 600x200 (or, for odd seeds, 200x600) BGR scene with one clear subject at a random place,
    and the subject's centre: for testing content-aware crops.

    The subject is a textured, saturated disc or a face-like blob of skin tone with eyes; the
    background is a plain muted colour or a softly blurred colour field.
    """
    rng = np.random.default_rng(seed)
    width, height = 600, 200
    if rng.random() < 0.5:
        image = np.empty((height, width, 3), np.uint8)
        image[...] = rng.integers(60, 200, 3)
        image = cv2.add(image, rng.integers(0, 6, image.shape, dtype=np.uint8))  # sensor-like noise
    else:  # an out-of-focus backdrop: a base colour with soft blotches of +-40 levels
        field = rng.integers(60, 200, 3) + rng.integers(-40, 41, (4, 12, 3))
        blotches = cv2.resize(
            np.clip(field, 0, 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC
        )
        image = cv2.GaussianBlur(blotches, (0, 0), 12)
    radius = int(rng.integers(22, 34))
    centre = (
        int(rng.integers(radius + 5, width - radius - 5)),
        int(rng.integers(radius + 5, height - radius - 5)),
    )
    if seed % 4 < 2:  # a textured, saturated object
        hue = int(rng.integers(0, 180))
        disc = np.zeros((height, width), np.uint8)
        cv2.circle(disc, centre, radius, 255, -1)
        hsv = np.dstack(
            (
                np.full((height, width), hue, np.uint8),
                np.full((height, width), 230, np.uint8),
                rng.integers(90, 255, (height, width), dtype=np.uint8),
            )
        )
        texture = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        image[disc > 0] = texture[disc > 0]
    else:  # a face-like blob: skin-tone ellipse, shaded, with two eyes and a mouth
        skin = np.array([(141, 170, 224), (96, 134, 198), (60, 95, 150)][seed % 3], np.uint8)
        axes = (int(radius * 0.8), radius)
        cv2.ellipse(image, centre, axes, 0, 0, 360, tuple(int(c) for c in skin), -1)
        for dx in (-radius // 3, radius // 3):
            cv2.circle(
                image, (centre[0] + dx, centre[1] - radius // 4), max(2, radius // 8), (40, 30, 30), -1
            )
        cv2.ellipse(
            image,
            (centre[0], centre[1] + radius // 2),
            (radius // 3, radius // 8),
            0,
            0,
            180,
            (60, 50, 120),
            2,
        )
    if seed % 2:  # portrait: the same scene turned on its side
        image, centre = np.ascontiguousarray(np.rot90(image)), (centre[1], width - 1 - centre[0])
    return image, centre

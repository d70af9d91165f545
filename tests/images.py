"""Images the tests encode themselves, and helpers to read responses back."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def encode(image: np.ndarray, extension: str, *flags: int) -> bytes:
    ok, buffer = cv2.imencode(extension, image, list(flags))
    assert ok, extension
    return buffer.tobytes()


def decode(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None, "response is not a decodable image"
    return image


def exif_orientation_segment(orientation: int) -> bytes:
    """A JPEG APP1 segment carrying only an EXIF orientation tag."""
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0\0\0\0"
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    return jpeg[:2] + exif_orientation_segment(orientation) + jpeg[2:]


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


def large_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Like ``photo`` at camera sizes (24 MP), made in a fraction of the time: upscaled, then noised."""
    image = cv2.resize(photo(width // 8, height // 8, seed), (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.empty_like(image)
    cv2.randn(noise, (0, 0, 0), (6, 6, 6))
    return cv2.add(image, noise)

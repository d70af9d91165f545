"""Hostile originals, built by hand: decompression bombs and headers that lie."""

from __future__ import annotations

import struct
import zlib


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A real grayscale PNG of ``width`` x ``height`` zeros: tiny on disk, huge once decoded."""
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


def png_declaring(png: bytes, width: int, height: int) -> bytes:
    """``png`` with its IHDR rewritten to declare another size (and a valid CRC)."""
    ihdr = bytearray(png[16:29])
    ihdr[0:8] = struct.pack(">II", width, height)
    return png[:8] + png_chunk(b"IHDR", bytes(ihdr)) + png[33:]


def jpeg_declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header rewritten to declare another size."""
    data = bytearray(jpeg)
    at = 2
    while at < len(data):
        marker, length = data[at + 1], struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        at += 2 + length
    raise ValueError("no frame header")


def webp_declaring(webp: bytes, width: int, height: int) -> bytes:
    """A lossy ``webp`` (a bare VP8 chunk) with its frame header rewritten to declare another size
    (at most 16383 a side, the format's own limit)."""
    assert webp[12:16] == b"VP8 " and webp[23:26] == b"\x9d\x01\x2a"
    return webp[:26] + struct.pack("<HH", width, height) + webp[30:]

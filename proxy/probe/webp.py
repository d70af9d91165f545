"""A WebP's declared size, EXIF orientation, ICC profile, alpha and frames: its RIFF chunks,
whichever of the three kinds (lossy VP8, lossless VP8L, extended VP8X) it is."""

from __future__ import annotations

import struct
from typing import BinaryIO

from .base import SourceInfo, _malformed, _valid_orientation
from .tiff import _TIFF_ORIENTATION, _tiff_tags


def _webp(file: BinaryIO) -> SourceInfo:
    file.seek(12)
    width = height = None
    orientation = 1
    profile = None
    frames = 0
    alpha = False
    while header := file.read(8):
        if len(header) < 8:
            break
        kind, length = struct.unpack("<4sI", header)
        frames += kind == b"ANMF"
        data = file.read(min(length, 1 << 20) if kind in (b"EXIF", b"ICCP") else min(length, 30))
        alpha |= kind == b"ALPH"
        if kind == b"VP8X" and len(data) >= 10:
            alpha |= bool(data[0] & 0x10)
            width = 1 + int.from_bytes(data[4:7], "little")
            height = 1 + int.from_bytes(data[7:10], "little")
        elif kind == b"VP8 " and len(data) >= 10 and width is None:
            width, height = (v & 0x3FFF for v in struct.unpack_from("<HH", data, 6))
        elif kind == b"VP8L" and len(data) >= 5 and width is None:
            bits = int.from_bytes(data[1:5], "little")
            width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            alpha |= bool(bits >> 28 & 1)  # the encoder's alpha_is_used hint
        elif kind == b"EXIF":
            exif = data[6:] if data.startswith(b"Exif\0\0") else data
            orientation = _tiff_tags(exif).get(_TIFF_ORIENTATION, 1)
        elif kind == b"ICCP":
            profile = data
        file.seek(length + (length & 1) - len(data), 1)  # chunks are padded to even sizes
    if width is None or height is None:
        raise _malformed("WebP")
    orientation = _valid_orientation(orientation)
    return SourceInfo("webp", width, height, orientation, profile=profile, frames=max(frames, 1), alpha=alpha)

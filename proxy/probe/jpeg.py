"""A JPEG's declared size, channels, EXIF orientation and ICC profile: its segments, up to the
frame header (SOF), which comes before any scan."""

from __future__ import annotations

import struct
from typing import BinaryIO

from .base import SourceInfo, _malformed, _valid_orientation
from .tiff import _TIFF_ORIENTATION, _tiff_tags

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(file: BinaryIO) -> SourceInfo:
    file.seek(2)
    orientation = 1
    icc: dict[int, bytes] = {}  # APP2 chunks by sequence number: a profile may span several
    while file.read(1) == b"\xff":
        kind = 0xFF
        while kind == 0xFF:  # any number of fill bytes may precede a marker
            kind = (file.read(1) or b"\0")[0]
        if kind == 0x01 or 0xD0 <= kind <= 0xD8:  # markers without a length
            continue
        if kind in (0xDA, 0xD9):  # scan data or end of image before any frame header
            break
        length = int.from_bytes(file.read(2), "big") - 2
        data = file.read(max(length, 0))
        if length < 0 or len(data) < length:
            break
        if kind in _JPEG_SOF and length >= 6:
            _, height, width, channels = struct.unpack_from(">BHHB", data)
            profile = b"".join(icc[n] for n in sorted(icc)) or None
            return SourceInfo(
                "jpeg", width, height, _valid_orientation(orientation), channels, profile=profile
            )
        if kind == 0xE1 and data.startswith(b"Exif\0\0"):
            orientation = _tiff_tags(data[6:]).get(_TIFF_ORIENTATION, 1)
        elif kind == 0xE2 and data.startswith(b"ICC_PROFILE\0") and len(data) > 14:
            icc[data[12]] = data[14:]
    raise _malformed("JPEG")

"""A PNG's declared size, channels, depth, interlacing, EXIF orientation, ICC profile,
transparency and APNG frames: its chunks, up to the first IDAT."""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

from .base import SourceInfo, _malformed, _valid_orientation
from .tiff import _TIFF_ORIENTATION, _tiff_tags

_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # by IHDR colour type; palette decodes as colour


def _png(file: BinaryIO) -> SourceInfo:
    file.seek(8)
    width = height = channels = None
    depth = 8
    interlaced = False
    orientation = 1
    profile = None
    transparent = None
    frames = 1
    while header := file.read(8):
        if len(header) < 8:
            break
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IHDR" and length >= 13:
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", file.read(13))
            channels = _PNG_CHANNELS.get(colour)
            interlaced = interlace == 1
            file.seek(length - 13 + 4, 1)
        elif kind == b"tRNS" and channels in (1, 3):  # transparency for gray, colour, palette
            if channels == 1 and length >= 2:  # the one grey sample value that is transparent
                (transparent,) = struct.unpack(">H", file.read(2))
                file.seek(-2, 1)
            channels += 1
            file.seek(length + 4, 1)
        elif kind == b"eXIf" and length <= 1 << 20:
            orientation = _tiff_tags(file.read(length)).get(_TIFF_ORIENTATION, 1)
            file.seek(4, 1)
        elif kind == b"acTL" and length >= 8:  # APNG: number of frames, number of plays
            (frames,) = struct.unpack(">I", file.read(4))
            file.seek(length - 4 + 4, 1)
        elif kind == b"iCCP" and length <= 1 << 20:  # name, NUL, method 0, zlib data
            profile = _inflate(file.read(length).partition(b"\0")[2][1:])
            file.seek(4, 1)
        elif kind in (b"IDAT", b"IEND"):
            break
        else:
            file.seek(length + 4, 1)
    if width is None or height is None:
        raise _malformed("PNG")
    orientation = _valid_orientation(orientation)
    return SourceInfo(
        "png",
        width,
        height,
        orientation,
        channels,
        depth,
        profile=profile,
        transparent=transparent,
        frames=frames,
        alpha=channels in (2, 4),  # an alpha channel, or a tRNS chunk counted as one
        interlaced=interlaced,
    )


def _inflate(data: bytes, limit: int = 1 << 22) -> bytes | None:
    """A compressed profile, at most ``limit`` bytes (a zip bomb stops there), or None if malformed."""
    try:
        inflater = zlib.decompressobj()
        profile = inflater.decompress(data, limit)
    except zlib.error:
        return None
    return profile if inflater.eof and profile else None

"""A TIFF's declared size, orientation, ICC profile and alpha, from its first directory (IFD).

The IFD readers here also read EXIF blocks, which have the same layout: the JPEG, PNG and WebP
readers take their orientation from ``_tiff_tags``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from .base import _MAX_IFD_ENTRIES, SourceInfo, _malformed, _valid_orientation

_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_ORIENTATION, _TIFF_ICC = 256, 257, 274, 34675
_TIFF_PHOTOMETRIC, _TIFF_SAMPLES, _TIFF_EXTRA_SAMPLES = 262, 277, 338
_TIFF_COLOURS = {0: 1, 1: 1, 2: 3, 3: 1}  # samples per photometric kind: grey, grey, RGB, palette


def _tiff(data: bytes) -> SourceInfo:
    tags = _tiff_tags(data)
    if _TIFF_WIDTH not in tags or _TIFF_HEIGHT not in tags:
        raise _malformed("TIFF")
    orientation = _valid_orientation(tags.get(_TIFF_ORIENTATION, 1))
    profile = None
    for tag, kind, count, at in _tiff_entries(data):
        if tag == _TIFF_ICC and kind == 7 and count > 4:  # UNDEFINED bytes, stored at an offset
            (offset,) = struct.unpack_from(("<" if data[:2] == b"II" else ">") + "I", data, at + 8)
            profile = data[offset : offset + count] if offset + count <= len(data) else None
    samples = tags.get(_TIFF_SAMPLES, 1)
    extra = samples - _TIFF_COLOURS.get(tags.get(_TIFF_PHOTOMETRIC, 2), samples)  # CMYK &c: none
    alpha = _TIFF_EXTRA_SAMPLES in tags or extra > 0
    width, height = tags[_TIFF_WIDTH], tags[_TIFF_HEIGHT]
    return SourceInfo("tiff", width, height, orientation, profile=profile, alpha=alpha)


def _tiff_tags(data: bytes) -> dict[int, int]:
    """The integer tags of a TIFF structure's first IFD (also the layout of an EXIF block)."""
    order = "<" if data[:2] == b"II" else ">"
    tags: dict[int, int] = {}
    for tag, kind, _, at in _tiff_entries(data):
        if kind == 3:  # SHORT
            (tags[tag],) = struct.unpack_from(order + "H", data, at + 8)
        elif kind == 4:  # LONG
            (tags[tag],) = struct.unpack_from(order + "I", data, at + 8)
    return tags


def _tiff_entries(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """Tag, type, count and offset of each entry of a TIFF structure's first IFD."""
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", data, 4)
    if offset + 2 > len(data):
        return
    (count,) = struct.unpack_from(order + "H", data, offset)
    for i in range(min(count, _MAX_IFD_ENTRIES)):
        entry = offset + 2 + 12 * i
        if entry + 12 > len(data):
            return
        tag, kind, values = struct.unpack_from(order + "HHI", data, entry)
        yield tag, kind, values, entry

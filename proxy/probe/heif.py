"""A HEIF's (HEIC's) declared size, ICC profile, alpha and depth: its primary item's properties.

HEIF is ISO-BMFF like AVIF, but its images are *items* in the ``meta`` box: ``pitm`` names the
primary one, ``iinf`` gives each item's type (``hvc1`` coded, ``grid`` of tiles...), ``ipco`` lists
properties and ``ipma`` associates them with items. Only the primary image is served: a burst, a
sequence or a file of several images takes it, as libheif and every viewer do.

Orientation. In HEIF, rotation (``irot``), mirroring (``imir``) and the clean aperture crop
(``clap``) are *transformative properties* of the item, which libheif applies while decoding
(pi_heif leaves ``ignore_transformations`` off). An EXIF orientation in the file describes the same
turn for cameras that write both (Apple's do) and must be ignored, or the image is turned twice:
HEIF's own rule, and libheif's, browsers' and Pillow's plugin's. So the size declared here is the
decoded one, cropped by ``clap`` then swapped when ``irot`` turns a quarter, and the orientation is
always 1. The limits count ``ispe`` (the coded size, before the crop), which is what the decoder
allocates; libheif refuses, before decoding, a coded picture larger than its ``ispe``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from fractions import Fraction
from typing import BinaryIO

from .base import SourceInfo, _malformed

_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
_IMAGES = {b"hvc1", b"grid", b"iden", b"iovl"}  # primary item types of an HEVC image
_ALPHA = (b"urn:mpeg:hevc:2015:auxid:1", b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha")
_MAX_META = 16 << 20  # bytes of a meta box: a camera's is a few KB
_MAX_BOXES = 1024  # top-level boxes walked to find it


def _heif(file: BinaryIO) -> SourceInfo | None:
    """The primary image's declared geometry, or None when the file is ISO-BMFF but not HEVC HEIF
    (another brand, or items of another codec: an AVIF under the ``mif1`` brand)."""
    boxes = _top_level(file)
    if b"ftyp" not in boxes:
        return None
    ftyp = _read(file, *boxes[b"ftyp"])
    if not _BRANDS & _brands(ftyp):
        return None
    if b"meta" not in boxes or boxes[b"meta"][1] - boxes[b"meta"][0] > _MAX_META:
        raise _malformed("HEIF")
    meta = _read(file, *boxes[b"meta"])
    if len(meta) < 4 or len(meta) < boxes[b"meta"][1] - boxes[b"meta"][0]:
        raise _malformed("HEIF")
    try:
        return _primary(meta, 4, len(meta))  # meta is a FullBox: version and flags first
    except IndexError:  # a box too short for its fields (struct.error is the probe's to catch)
        raise _malformed("HEIF") from None


def _top_level(file: BinaryIO) -> dict[bytes, tuple[int, int]]:
    """Where each top-level box's payload starts and ends, from their headers alone (a meta box
    may come after the media data)."""
    size = file.seek(0, 2)
    found: dict[bytes, tuple[int, int]] = {}
    at = 0
    for _ in range(_MAX_BOXES):
        header = _read(file, at, at + 16)
        if len(header) < 8:
            break
        length, kind = struct.unpack_from(">I4s", header)
        skip = 8
        if length == 1 and len(header) == 16:
            (length,) = struct.unpack_from(">Q", header, 8)
            skip = 16
        elif length == 0:  # to the end of the file
            length = size - at
        if length < skip:
            break
        found.setdefault(kind, (at + skip, at + length))
        at += length
    return found


def _read(file: BinaryIO, start: int, end: int) -> bytes:
    file.seek(start)
    return file.read(end - start)


def _brands(ftyp: bytes) -> set[bytes]:
    """The major brand and the compatible ones (after the minor version)."""
    return {ftyp[:4]} | {ftyp[at : at + 4] for at in range(8, len(ftyp) - 3, 4)}


def _primary(data: bytes, start: int, end: int) -> SourceInfo | None:
    meta = _boxes(data, start, end)
    if not {b"pitm", b"iinf", b"iprp"} <= meta.keys():
        raise _malformed("HEIF")
    at, _ = meta[b"pitm"]
    primary = struct.unpack_from(">I" if data[at] else ">H", data, at + 4)[0]
    types = _item_types(data, *meta[b"iinf"])
    if types.get(primary) not in _IMAGES or b"hvc1" not in types.values():
        return None
    iprp = _boxes(data, *meta[b"iprp"])
    if b"ipco" not in iprp or b"ipma" not in iprp:
        raise _malformed("HEIF")
    properties = list(_children(data, *iprp[b"ipco"]))
    associated = _associations(data, *iprp[b"ipma"])

    def of(item: int) -> list[tuple[bytes, int, int]]:
        return [properties[i - 1] for i in associated.get(item, ()) if 0 < i <= len(properties)]

    own = of(primary)
    extents = [struct.unpack_from(">II", data, at + 4) for kind, at, _ in own if kind == b"ispe"]
    if not extents or not all(extents[0]):
        raise _malformed("HEIF")
    coded = extents[0]
    width, height = coded
    profile = None
    depth = 8
    for kind, at, stop in own:  # in order: clap before irot, as libheif applies them
        if kind == b"clap" and stop - at >= 32:
            width, height = _clean_aperture(data, at, coded)
        elif kind == b"irot" and data[at] & 1:  # a quarter or three quarters of a turn
            width, height = height, width
        elif kind == b"colr" and data[at : at + 4] in (b"prof", b"rICC"):
            profile = data[at + 4 : stop]
        elif kind == b"pixi" and stop - at >= 6:
            depth = max(data[at + 5 : at + 5 + data[at + 4]], default=8)
    alpha = any(
        data[at + 4 : stop].rstrip(b"\0") in _ALPHA
        for item in _auxiliaries(data, meta.get(b"iref"), primary)
        for kind, at, stop in of(item)
        if kind == b"auxC"
    )
    return SourceInfo(
        "heif", width, height, profile=profile, alpha=alpha, depth=depth, coded_pixels=coded[0] * coded[1]
    )


def _clean_aperture(data: bytes, at: int, coded: tuple[int, int]) -> tuple[int, int]:
    """The size libheif crops to: the aperture's width and height (fractions) centred on the
    picture's centre plus an offset, each edge rounded down and kept within the picture."""
    values = struct.unpack_from(">IIIIiIiI", data, at)
    size = []
    for axis, extent in enumerate(coded):
        span = Fraction(values[2 * axis], values[2 * axis + 1] or 1)
        offset = Fraction(values[4 + 2 * axis], values[5 + 2 * axis] or 1)
        centre = offset + Fraction(extent - 1, 2)
        first = max(int(centre - (span - 1) / 2), 0)
        last = min(int(centre + (span - 1) / 2), extent - 1)
        size.append(last - first + 1 if last >= first else extent)
    return size[0], size[1]


def _item_types(data: bytes, start: int, end: int) -> dict[int, bytes]:
    """Item id -> type, from the ``infe`` entries (versions 2 and 3 carry the type)."""
    entries = 4 + (2 if data[start] == 0 else 4)  # version and flags, then the entry count
    types = {}
    for kind, at, _ in _children(data, start + entries, end):
        if kind == b"infe" and data[at] in (2, 3):
            wide = data[at] == 3
            (item,) = struct.unpack_from(">I" if wide else ">H", data, at + 4)
            offset = at + 4 + (4 if wide else 2) + 2  # the item id, then the protection index
            types[item] = data[offset : offset + 4]
    return types


def _associations(data: bytes, start: int, end: int) -> dict[int, list[int]]:
    """Item id -> the 1-based indexes of its properties in ``ipco``, in their order."""
    version, wide_index = data[start], data[start + 3] & 1
    (count,) = struct.unpack_from(">I", data, start + 4)
    at = start + 8
    found: dict[int, list[int]] = {}
    for _ in range(count):
        if at + 6 > end:
            break
        (item,) = struct.unpack_from(">I" if version else ">H", data, at)
        at += 4 if version else 2
        number = data[at]
        at += 1
        indexes = []
        for _ in range(number):
            if wide_index:
                indexes.append(struct.unpack_from(">H", data, at)[0] & 0x7FFF)
                at += 2
            else:
                indexes.append(data[at] & 0x7F)
                at += 1
        found[item] = indexes
    return found


def _auxiliaries(data: bytes, iref: tuple[int, int] | None, primary: int) -> list[int]:
    """The items that declare themselves auxiliary to the primary one (``auxl``): its alpha plane,
    its depth map."""
    if iref is None:
        return []
    start, end = iref
    wide = data[start] != 0
    found = []
    for kind, at, _ in _children(data, start + 4, end):
        if kind != b"auxl":
            continue
        (source,) = struct.unpack_from(">I" if wide else ">H", data, at)
        at += 4 if wide else 2
        (count,) = struct.unpack_from(">H", data, at)
        targets = struct.unpack_from(f">{count}{'I' if wide else 'H'}", data, at + 2)
        if primary in targets:
            found.append(source)
    return found


def _boxes(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """The first box of each kind from ``start`` to ``end``: its payload's start and end."""
    found: dict[bytes, tuple[int, int]] = {}
    for kind, at, stop in _children(data, start, end):
        found.setdefault(kind, (at, stop))
    return found


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Each box from ``start`` to ``end``: its kind, its payload's start and end."""
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                return
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            return
        yield kind, at + header, at + size
        at += size

"""Where a file ends: one rule per format (``_ENDS``), so that a file ending before its image
does is refused. A decoder may fill what is missing (libjpeg paints it grey), and a truncated
original rendered once would be cached and served as if whole.

Each rule is (fd, size) -> whether the file holds the whole image, from a few small preads when
it does; walking further only when the cheap answer is not yes. "Not walked" (over MAX_SCAN or
_MAX_WALK steps) counts as whole: the decoder has the last word there, as before. Each rule
checks what that format's decoder reads, no more:

    jpeg  an EOI after the last scan: the tail, else a walk from the start (trailers hold markers)
    png   an IEND chunk: the last 12 bytes, else a walk by chunk lengths
    webp  the size the RIFF header declares: libwebp's own test
    avif  every top-level box within the file: a cut mdat, which comes last, runs past the end
    heif  the same: HEIF is ISO-BMFF too
    bmp   the pixel rows (or a compressed bitmap's stored size), not the header's file size
    tiff  the first directory, its values and its strips or tiles: what libtiff reads for page one
    gif   none here: gif.py checks it while it counts the frames, walking every block anyway
    jxl   none here: libjxl asks for more input rather than decode a cut file, and the decoder's
          row (pipeline/decode.py) refuses it as truncated
    svg   none here: a document that ends before its root element does is refused as truncated
          when it is read whole, before drawing (pipeline/svg.py)
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable

from .base import _MAX_IFD_ENTRIES, MAX_SCAN

_MAX_WALK = 1 << 16  # markers, chunks or boxes walked to find a file's end; past this many, not checked


def _read_at(fd: int, at: int, size: int) -> bytes:
    return os.pread(fd, size, max(at, 0))


_JPEG_TAIL = 4096  # bytes read from a JPEG's end: its EOI, and any zero padding after it
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # not a stuffed zero, a restart, nor fill
_JPEG_LONE = {0x01, *range(0xD0, 0xD9)}  # markers without a length: TEM, RSTn, SOI


def _jpeg_ends(fd: int, size: int) -> bool:
    """Whether the JPEG's EOI (FFD9) comes after its last scan.

    In entropy-coded data a 0xFF byte is always followed by a stuffed zero or a restart marker,
    so a file cut inside a scan cannot end with FFD9: a file that does (zero padding aside) is
    whole, from one read of its tail, which is the common case. (A cut in the few hundred bytes
    of tables between scans could end so only by chance; one before the frame header is refused
    by ``_jpeg``.) Otherwise the segments are walked
    from the start, each skipped by its length and each scan to the next marker, until the first
    EOI: the image libjpeg decodes. Walking forward rather than searching back from the end is
    what keeps anything after that EOI out of the answer: an EXIF thumbnail sits inside its APP1
    segment, and a trailer (Samsung's SEFT, a motion photo's video, MPF's second images, a zip)
    may hold FFDA and FFD9 by chance, in any order.
    """
    if _read_at(fd, size - _JPEG_TAIL, _JPEG_TAIL).rstrip(b"\0").endswith(b"\xff\xd9"):
        return True
    if size > MAX_SCAN:
        return True
    at = 2  # after SOI
    for _ in range(_MAX_WALK):
        marker = _next_jpeg_marker(fd, at)
        if marker is None:
            return False  # the file ended first
        at, kind = marker
        if kind == 0xD9:
            return True
        if kind in _JPEG_LONE:
            at += 2
            continue
        length = _read_at(fd, at + 2, 2)
        if len(length) < 2:
            return False
        at += 2 + int.from_bytes(length, "big")
    return True


def _next_jpeg_marker(fd: int, at: int) -> tuple[int, int] | None:
    """The offset and code of the first marker at or after ``at``, reading more each time: a
    segment's next marker is near, a scan's may be megabytes away."""
    chunk = 512
    while data := _read_at(fd, at, chunk):
        found = _JPEG_MARKER.search(data)
        if found:
            return at + found.start(), data[found.start() + 1]
        if len(data) < chunk:
            return None
        at += len(data) - 1  # a marker may straddle the boundary
        chunk = min(chunk * 8, 1 << 20)
    return None


_PNG_IEND = b"\0\0\0\0IEND\xaeB`\x82"  # the whole IEND chunk: no data, a fixed CRC


def _png_ends(fd: int, size: int) -> bool:
    """Whether an IEND chunk comes before the file ends: its last 12 bytes, most often; else the
    chunks are walked by their lengths (bytes may follow IEND), and one that runs past the end,
    or no IEND at all, is a cut."""
    if _read_at(fd, size - 12, 12) == _PNG_IEND:
        return True
    at = 8
    for _ in range(_MAX_WALK):
        header = _read_at(fd, at, 8)
        if len(header) < 8:
            return False
        length, kind = struct.unpack(">I4s", header)
        at += 12 + length  # length, type, data, CRC
        if at > size:
            return False
        if kind == b"IEND":
            return True
    return True


def _riff_ends(fd: int, size: int) -> bool:
    """Whether the file holds the bytes its RIFF header declares (libwebp's own test), for every
    WebP alike: lossy, lossless, extended, animated."""
    declared = int.from_bytes(_read_at(fd, 4, 4), "little")
    return 8 + declared <= size


def _isobmff_ends(fd: int, size: int) -> bool:
    """Whether every top-level box (ftyp, meta, moov, mdat...) ends within the file: a few reads
    of 16 bytes. A cut AVIF almost always has its mdat, which comes last, running past the end."""
    at = 0
    for _ in range(_MAX_WALK):
        if at >= size:
            break
        header = _read_at(fd, at, 16)
        if len(header) < 8:
            return False  # a box header cut short
        box, _ = struct.unpack_from(">I4s", header)
        if box == 0:  # the last box, to the end of the file
            return True
        if box == 1:
            if len(header) < 16:
                return False
            (box,) = struct.unpack_from(">Q", header, 8)
        if box < 8:
            return True  # malformed, not cut: the decoder's to refuse
        at += box
    return at <= size


def _bmp_ends(fd: int, size: int) -> bool:
    """Whether the pixel rows (or a compressed bitmap's stored size) end within the file. The
    file header's own size field is not used: writers get it wrong, and rows are what a decoder
    reads. The last row's padding to 4 bytes is not required."""
    header = _read_at(fd, 0, 38)
    fields: tuple[int, ...] = struct.unpack_from("<II", header, 10)  # pixels' offset, DIB header size
    if fields[1] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes, never compressed
        fields += (*struct.unpack_from("<HHHH", header, 18), 0, 0)
    else:
        fields += struct.unpack_from("<iiHHII", header, 18)
    offset, _, width, height, _, bits, compression, stored = (abs(field) for field in fields)
    if compression not in (0, 3, 6):  # RLE, JPEG, PNG: the stored size, where the header gives it
        return offset + stored <= size
    if not height:
        return offset <= size
    row = (width * bits + 31) // 32 * 4
    return offset + row * (height - 1) + (width * bits + 7) // 8 <= size


_TIFF_PIECES = ((273, 279), (324, 325))  # StripOffsets and StripByteCounts; TileOffsets and TileByteCounts
_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_MAX_PIECES = 1 << 20  # strips or tiles whose ends are checked


def _tiff_ends(fd: int, size: int) -> bool:
    """Whether the first image's directory, the values it stores out of line, and every strip or
    tile it points to (offset plus byte count) lie within the file: what libtiff reads to decode
    the first page. Three to five small reads, wherever the writer put the directory."""
    head = _read_at(fd, 0, 8)
    order = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(order + "I", head, 4)
    count = _read_at(fd, ifd, 2)
    if len(count) < 2:
        return False
    entries = min(struct.unpack(order + "H", count)[0], _MAX_IFD_ENTRIES)
    directory = _read_at(fd, ifd + 2, 12 * entries)
    if len(directory) < 12 * entries:
        return False
    wanted = {tag for pair in _TIFF_PIECES for tag in pair}
    values: dict[int, tuple[int, ...]] = {}
    for at in range(0, len(directory), 12):
        tag, kind, number, offset = struct.unpack_from(order + "HHII", directory, at)
        length = number * _TIFF_TYPE_SIZES.get(kind, 0)
        if length > 4 and offset + length > size:
            return False
        if tag in wanted and kind in (3, 4) and number <= _MAX_PIECES:
            raw = directory[at + 8 : at + 8 + length] if length <= 4 else _read_at(fd, offset, length)
            values[tag] = struct.unpack(f"{order}{number}{'H' if kind == 3 else 'I'}", raw)
    for offsets, counts in _TIFF_PIECES:
        pieces = zip(values.get(offsets, ()), values.get(counts, ()), strict=False)
        ends = [start + length for start, length in pieces]
        if max(ends, default=0) > size:
            return False
    return True


# The formats checked after their header is read; GIF is checked while its blocks are counted (gif.py),
# JPEG XL by libjxl while it decodes.
_ENDS: dict[str, Callable[[int, int], bool]] = {
    "jpeg": _jpeg_ends,
    "png": _png_ends,
    "webp": _riff_ends,
    "avif": _isobmff_ends,
    "heif": _isobmff_ends,
    "bmp": _bmp_ends,
    "tiff": _tiff_ends,
}

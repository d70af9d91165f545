"""Read what an original *declares* (format, dimensions, EXIF orientation) from its header.

Probing reads a few hundred bytes, never pixels, so the pipeline can plan
before it decodes: pick a shrink-on-decode factor, apply EXIF orientation to
every format the same way (OpenCV ignores it for ``IMREAD_UNCHANGED``, which
alpha and 16-bit need), and refuse anything that is not one of the formats we
document before it reaches an OpenCV decoder.

It also refuses a file that ends before its image does (``_ENDS``, one rule per
format): a decoder may fill what is missing (libjpeg paints it grey), and a
truncated original rendered once would be cached and served as if whole.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO, NamedTuple

from .errors import NotFound, UnsupportedImage

MAX_SCAN = 64 << 20  # bytes of a GIF read to count its frames (the source limit is lower by default)
MAX_FRAMES = 100_000  # counting stops past this many: any limit is far below
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_ISOBMFF_CONTAINERS = (b"meta", b"iprp", b"ipco", b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl")
INDEFINITE = (1 << 64) - 1, (1 << 32) - 1  # an ISOBMFF duration that never ends, 64 and 32-bit
_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_ORIENTATION, _TIFF_ICC = 256, 257, 274, 34675
_TIFF_PHOTOMETRIC, _TIFF_SAMPLES, _TIFF_EXTRA_SAMPLES = 262, 277, 338
_TIFF_COLOURS = {0: 1, 1: 1, 2: 3, 3: 1}  # samples per photometric kind: grey, grey, RGB, palette
_MAX_IFD_ENTRIES = 1024
_MAX_WALK = 1 << 16  # markers, chunks or boxes walked to find a file's end; past this many, not checked


Profile = bytes  # an ICC profile (the name, because SourceInfo.bytes shadows the type)


class Kind(NamedTuple):
    """What the output format depends on (formats.resolve): small, so the view keeps one per
    original version and names the produced format in the cache key before any pixel."""

    format: str
    animated: bool
    alpha: bool


@dataclass(frozen=True)
class SourceInfo:
    format: str  # jpeg, png, webp, gif, bmp, tiff, avif
    width: int | None  # as stored, before orientation; None where the header does not say
    height: int | None
    orientation: int = 1  # EXIF orientation, 1..8
    channels: int | None = None  # JPEG: 1 gray, 3 YCbCr, 4 CMYK; PNG: 1 gray, 3 colour, +1 with alpha
    depth: int = 8  # bits per sample (PNG: 16 possible)
    bytes: int = 0  # file size
    profile: Profile | None = None  # the embedded ICC profile (JPEG, PNG, WebP, TIFF, AVIF)
    transparent: int | None = None  # PNG grey + tRNS: the sample value that is transparent
    frames: int = 1  # GIF, WebP and APNG animations: how many frames the file declares
    plays: int | None = None  # AVIF sequences: times played, 0 for ever (OpenCV reads the others')
    alpha: bool = False  # declares transparency (a channel, a colour, a plane); True where unsure
    interlaced: bool = False  # PNG: Adam7

    @property
    def kind(self) -> Kind:
        return Kind(self.format, self.frames > 1, self.alpha)

    @property
    def transposed(self) -> bool:
        """Orientations 5..8 swap width and height."""
        return self.orientation >= 5


def probe(path: str) -> SourceInfo:
    """Sniff ``path`` by its magic bytes, read its declared geometry, and check that the file does
    not end before the image does (``_ENDS``). Raises UnsupportedImage, or NotFound."""
    try:
        with open(path, "rb") as file:
            info = _sniff(file)
            size = os.fstat(file.fileno()).st_size
            if info is not None and info.format in _ENDS and not _ENDS[info.format](file.fileno(), size):
                raise _truncated(info.format)
    except OSError:
        raise NotFound() from None  # gone or unreadable since it was resolved
    except struct.error:  # a header cut short
        raise UnsupportedImage("truncated image header") from None
    if info is None:
        raise UnsupportedImage("not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF)")
    return replace(info, bytes=size)


def _sniff(file: BinaryIO) -> SourceInfo | None:
    head = file.read(32)
    file.seek(0)
    if head.startswith(b"\xff\xd8\xff"):
        return _jpeg(file)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(file)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(file)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(file, head)
    if head[:2] == b"BM":
        width, height, _, bits = struct.unpack_from("<iiHH", head, 18)
        return SourceInfo("bmp", abs(width), abs(height), alpha=bits == 32)  # 32 bits may carry alpha
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(file.read(1 << 20))
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return _avif(file.read(1 << 16))
    return None


def _gif(file: BinaryIO, head: bytes) -> SourceInfo:
    """A GIF's size, frames and transparency. Its end is checked here, not in ``_ENDS``: counting
    frames walks every block anyway, and a walk that runs out of bytes before the trailer (0x3B)
    is a file cut short, whatever the cut (a frame's data, between frames, the trailer itself)."""
    width, height = struct.unpack_from("<HH", head, 6)
    data = file.read(MAX_SCAN)
    frames, transparent, cut = _gif_blocks(data)
    if cut and len(data) < MAX_SCAN:  # past MAX_SCAN, the walk saw only the start
        raise _truncated("gif")
    return SourceInfo("gif", width, height, frames=frames, alpha=transparent)


def _gif_blocks(data: bytes) -> tuple[int, bool, bool]:
    """Image descriptors in a GIF, whether any frame has a transparent colour, and whether the
    blocks ran past the end of ``data``, by walking its blocks (no pixel is decoded).

    Stops at the trailer, at garbage, at a cut, or past ``MAX_FRAMES``; a malformed file counts
    what it has, and only a cut is said to be one (garbage is the decoder's to refuse).
    """
    if len(data) < 13:
        return 1, True, True
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # after the global colour table
    frames = 0
    transparent = False
    while at < len(data) and frames <= MAX_FRAMES:
        kind = data[at]
        if kind == 0x2C:  # image descriptor: 9 bytes, a local colour table, LZW code size, data
            if at + 10 > len(data):
                break
            packed = data[at + 9]
            at += 10 + (3 << ((packed & 7) + 1) if packed & 0x80 else 0) + 1
            frames += 1
        elif kind == 0x21:  # extension: label, then sub-blocks
            if at + 3 < len(data) and data[at + 1] == 0xF9:  # graphic control: bit 0, a transparent colour
                transparent |= bool(data[at + 3] & 1)
            at += 2
        else:  # 0x3B trailer, or garbage
            return max(frames, 1), transparent, False
        while at < len(data) and data[at]:  # sub-blocks, each length-prefixed, to a zero length
            at += data[at] + 1
        at += 1
    return max(frames, 1), transparent, frames <= MAX_FRAMES


def _malformed(kind: str) -> UnsupportedImage:
    return UnsupportedImage(f"malformed {kind} header")


def _truncated(kind: str) -> UnsupportedImage:
    return UnsupportedImage(f"truncated {kind.upper()}: the file ends before the image does")


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


def _avif(data: bytes) -> SourceInfo:
    """The largest ``ispe`` (image spatial extents) box: the primary image, or larger."""
    # ispe payload: version and flags (4 bytes), then width and height
    sizes = [struct.unpack_from(">II", data, at + 4) for at in isobmff_boxes(data, 0, len(data), b"ispe")]
    if not sizes:
        raise _malformed("AVIF")
    width, height = max(sizes, key=lambda size: size[0] * size[1])
    profile = None
    for at in isobmff_boxes(data, 0, len(data), b"colr"):  # colour type, then an ICC profile
        if data[at : at + 4] in (b"prof", b"rICC"):
            (size,) = struct.unpack_from(">I", data, at - 8)
            profile = data[at + 4 : at - 8 + size]
    # An image sequence ("avis") also has tracks: a sample per frame, counted in each track's stsz
    # (version and flags, a sample size, then the count). A still has none.
    counts = [struct.unpack_from(">I", data, at + 8)[0] for at in isobmff_boxes(data, 0, len(data), b"stsz")]
    frames = max(counts, default=1) or 1
    alpha = b"auxiliary:alpha" in data  # the alpha plane's auxiliary type, for stills and sequences
    return SourceInfo(
        "avif", width, height, profile=profile, frames=frames, plays=_avif_plays(data), alpha=alpha
    )


def _avif_plays(data: bytes) -> int:
    """How many times a sequence plays, 0 for ever, as libavif writes it: an edit list that
    repeats (flags 1) its segment over a track lasting plays x the segment, or for ever."""
    edits, tracks = isobmff_boxes(data, 0, len(data), b"elst"), isobmff_boxes(data, 0, len(data), b"tkhd")
    if not edits or not tracks:
        return 0  # no edit list: libavif cannot tell, and viewers loop
    if not data[edits[0] + 3] & 1:
        return 1
    segment = int(struct.unpack_from(">Q" if data[edits[0]] == 1 else ">I", data, edits[0] + 8)[0])
    if data[tracks[0]] == 1:  # tkhd version 1: 64-bit times, then track id and a reserved word
        duration = int(struct.unpack_from(">Q", data, tracks[0] + 28)[0])
    else:
        duration = int(struct.unpack_from(">I", data, tracks[0] + 20)[0])
    if duration in INDEFINITE or not segment:
        return 0
    return max(1, -(-duration // segment))


def isobmff_boxes(data: bytes, start: int, end: int, wanted: bytes) -> list[int]:
    """Payload offsets of every ``wanted`` box, looking inside the containers that hold image
    properties (``meta``/``iprp``/``ipco``) and sample tables (``moov``/``trak``/.../``stbl``)."""
    found: list[int] = []
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            break
        if kind == wanted and size >= header + 12:
            found.append(at + header)
        elif kind in _ISOBMFF_CONTAINERS:
            skip = 4 if kind == b"meta" else 0  # meta is a FullBox: version and flags first
            found += isobmff_boxes(data, at + header + skip, at + size, wanted)
        at += size
    return found


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


def _inflate(data: bytes, limit: int = 1 << 22) -> bytes | None:
    """A compressed profile, at most ``limit`` bytes (a zip bomb stops there), or None if malformed."""
    try:
        inflater = zlib.decompressobj()
        profile = inflater.decompress(data, limit)
    except zlib.error:
        return None
    return profile if inflater.eof and profile else None


def _valid_orientation(value: int) -> int:
    return value if 1 <= value <= 8 else 1


# --- where a file ends: one rule per format ---------------------------------------------------
# Each is (fd, size) -> whether the file holds the whole image, from a few small preads when it
# does; walking further only when the cheap answer is not yes. "Not walked" (over MAX_SCAN or
# _MAX_WALK steps) counts as whole: the decoder has the last word there, as before.


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


# The formats checked after their header is read; GIF is checked while its blocks are counted (_gif).
_ENDS: dict[str, Callable[[int, int], bool]] = {
    "jpeg": _jpeg_ends,
    "png": _png_ends,
    "webp": _riff_ends,
    "avif": _isobmff_ends,
    "bmp": _bmp_ends,
    "tiff": _tiff_ends,
}

"""Read what an original *declares* (format, dimensions, EXIF orientation) from its header.

Probing reads a few hundred bytes, never pixels, so the pipeline can plan
before it decodes: pick a shrink-on-decode factor, apply EXIF orientation to
every format the same way (OpenCV ignores it for ``IMREAD_UNCHANGED``, which
alpha and 16-bit need), and refuse anything that is not one of the formats we
document before it reaches an OpenCV decoder.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
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
    """Sniff ``path`` by its magic bytes and read its declared geometry."""
    try:
        with open(path, "rb") as file:
            info = _sniff(file)
            size = os.fstat(file.fileno()).st_size
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
        width, height = struct.unpack_from("<HH", head, 6)
        frames, transparent = _gif_blocks(file.read(MAX_SCAN))
        return SourceInfo("gif", width, height, frames=frames, alpha=transparent)
    if head[:2] == b"BM":
        width, height, _, bits = struct.unpack_from("<iiHH", head, 18)
        return SourceInfo("bmp", abs(width), abs(height), alpha=bits == 32)  # 32 bits may carry alpha
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(file.read(1 << 20))
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return _avif(file.read(1 << 16))
    return None


def _gif_blocks(data: bytes) -> tuple[int, bool]:
    """Image descriptors in a GIF, and whether any frame has a transparent colour, by walking its
    blocks (no pixel is decoded).

    Stops at the trailer, at a cut, or past ``MAX_FRAMES``; a malformed file counts what it has.
    """
    if len(data) < 13:
        return 1, True
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
            break
        while at < len(data) and data[at]:  # sub-blocks, each length-prefixed, to a zero length
            at += data[at] + 1
        at += 1
    return max(frames, 1), transparent


def _malformed(kind: str) -> UnsupportedImage:
    return UnsupportedImage(f"malformed {kind} header")


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

"""Read what an original *declares* (format, dimensions, EXIF orientation) from its header.

Probing reads a few hundred bytes, never pixels, so the pipeline can plan
before it decodes: pick a shrink-on-decode factor, apply EXIF orientation to
every format the same way (OpenCV ignores it for ``IMREAD_UNCHANGED``, which
alpha and 16-bit need), and refuse anything that is not one of the formats we
document before it reaches an OpenCV decoder.

It also refuses a file that ends before its image does (``_ENDS``, one rule per
format): a decoder may fill what is missing (libjpeg paints it grey), and a
truncated original rendered once would be cached and served as if whole.

``probe`` sniffs the magic bytes and hands the file to its format's reader:

    base.py     SourceInfo, Kind, the errors and limits: what the modules share
    jpeg.py     segments up to the frame header: size, channels, EXIF orientation, ICC
    png.py      chunks up to IDAT: size, channels, depth, tRNS, EXIF, ICC, APNG frames
    webp.py     RIFF chunks (VP8, VP8L, VP8X): size, alpha, EXIF, ICC, frames
    gif.py      blocks: size, frames, transparency, and the trailer (its end check)
    bmp.py      the info header
    tiff.py     the first IFD: size, orientation, ICC, alpha; EXIF blocks share its layout
    isobmff.py  AVIF boxes: size, ICC, alpha, frames, plays; isobmff_boxes for the pipeline
    heif.py     HEIF (HEIC) items: the primary one's size as decoded, ICC, alpha, depth
    jxl.py      JPEG XL, through libjxl's own header reading: size, orientation, alpha, profile
    svg.py      SVG: the root element's declared size, read by expat (nothing expanded or fetched)
    ends.py     where each format's file ends (``_ENDS``): a cut file is refused
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import replace
from typing import BinaryIO

from ..errors import NotFound, UnsupportedImage
from .base import MAX_SCAN, Kind, Profile, SourceInfo, _truncated
from .base import _truncated as truncated  # the refusal of a cut file, for a decoder that finds one
from .bmp import _bmp
from .ends import _ENDS
from .gif import MAX_FRAMES, _gif
from .heif import _heif
from .isobmff import INDEFINITE, _avif, isobmff_boxes
from .jpeg import _jpeg
from .jxl import _jxl
from .png import _png
from .svg import _svg
from .tiff import _tiff
from .webp import _webp

__all__ = [
    "INDEFINITE",
    "MAX_FRAMES",
    "MAX_SCAN",
    "Kind",
    "Profile",
    "SourceInfo",
    "isobmff_boxes",
    "probe",
    "probe_bytes",
    "truncated",
]


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
        raise UnsupportedImage(
            "not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF, HEIF, JPEG XL, SVG)"
        )
    return replace(info, bytes=size)


def probe_bytes(data: bytes) -> SourceInfo | None:
    """What an image held in memory declares (one inside another: an SVG's data: URI); None
    when it is in no format probed here, or its header is malformed or cut. Its end is not checked."""
    try:
        info = _sniff(io.BytesIO(data))
    except (UnsupportedImage, struct.error):
        return None
    return replace(info, bytes=len(data)) if info is not None else None


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
        return _bmp(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(file.read(1 << 20))
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return _avif(file.read(1 << 16))
    if head[4:8] == b"ftyp":  # HEIF by its brands, or another ISO-BMFF file (a video): None
        return _heif(file)
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):  # codestream, container
        return _jxl(file)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):  # XML, maybe after a BOM: an SVG?
        return _svg(file)
    return None

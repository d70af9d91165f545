"""An AVIF's declared size, ICC profile, alpha, frames and plays, from its ISOBMFF boxes; and
``isobmff_boxes``, the box walk the pipeline's AVIF reader (pipeline/avif.py) uses too."""

from __future__ import annotations

import struct

from .base import SourceInfo, _malformed

_ISOBMFF_CONTAINERS = (b"meta", b"iprp", b"ipco", b"moov", b"trak", b"edts", b"mdia", b"minf", b"stbl")
INDEFINITE = (1 << 64) - 1, (1 << 32) - 1  # an ISOBMFF duration that never ends, 64 and 32-bit


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

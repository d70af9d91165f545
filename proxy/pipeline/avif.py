"""The boxes of the AVIF sequences OpenCV writes, made to say what libavif would (ISOBMFF)."""

from __future__ import annotations

import struct

from ..probe import isobmff_boxes


def finished(data: bytes, plays: int) -> bytes:
    """An animated AVIF as served: ``plays`` times (0: for ever), and no clock in its boxes."""
    return timeless(with_avif_plays(data, plays) if plays else data)


def timeless(data: bytes) -> bytes:
    """An AVIF sequence with its creation and modification times (mvhd, tkhd, mdhd) at zero, as
    ISOBMFF allows: OpenCV's writer stamps the clock, so every render of one variant differed,
    and one ETag named many byte strings."""
    patched = bytearray(data)
    for kind in (b"mvhd", b"tkhd", b"mdhd"):
        for at in isobmff_boxes(data, 0, len(data), kind):
            width = 8 if data[at] == 1 else 4  # version 1: 64-bit times
            patched[at + 4 : at + 4 + 2 * width] = bytes(2 * width)
    return bytes(patched)


def with_avif_plays(data: bytes, plays: int) -> bytes:
    """An AVIF sequence from OpenCV (which writes every one as looping for ever) made to play
    ``plays`` times, as libavif marks it: movie and track durations of plays x the edit list's
    repeated segment."""
    edits = isobmff_boxes(data, 0, len(data), b"elst")
    if not edits:
        return data
    patched = bytearray(data)
    segment = struct.unpack_from(">Q" if data[edits[0]] == 1 else ">I", data, edits[0] + 8)[0]
    for kind, long_at, short_at in ((b"mvhd", 24, 16), (b"tkhd", 28, 20)):
        for at in isobmff_boxes(data, 0, len(data), kind):
            if data[at] == 1:
                struct.pack_into(">Q", patched, at + long_at, segment * plays)
            else:
                struct.pack_into(">I", patched, at + short_at, min(segment * plays, (1 << 32) - 2))
    return bytes(patched)

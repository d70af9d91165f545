"""A GIF's declared size, frames and transparency, by walking its blocks; and its end, checked
on the way (so GIF has no rule in ``ends``)."""

from __future__ import annotations

import struct
from typing import BinaryIO

from .base import MAX_SCAN, SourceInfo, _truncated

MAX_FRAMES = 100_000  # counting stops past this many: any limit is far below


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

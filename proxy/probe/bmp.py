"""A BMP's declared size and alpha: its info header fits in the bytes read to sniff it."""

from __future__ import annotations

import struct

from .base import SourceInfo


def _bmp(head: bytes) -> SourceInfo:
    width, height, _, bits = struct.unpack_from("<iiHH", head, 18)
    return SourceInfo("bmp", abs(width), abs(height), alpha=bits == 32)  # 32 bits may carry alpha

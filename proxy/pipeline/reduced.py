"""Reduced copies of large originals, so that a new size of an original already seen is cheap.

An origin is asked for one photo at many widths. Decoding a large JPEG is costly even at 1/8
scale; a reduced copy (upright, 8-bit, longest side ``SIDE``, area-averaged from the original)
kept raw in the cache is read in a fraction of that time (figures: docs/performance.md). So the
second time a large original misses, its copy is built and stored, and every later size that fits
within the copy is derived from it. The first miss renders directly, so an original asked for
once pays nothing extra.

The result's geometry is always planned on the original's own size, so a variant has the
same dimensions whichever way it was made; pixels differ by a rounding at most, as an
area average of an area average.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ..color import to_srgb
from ..limits import Limits
from ..params import ImageParams
from ..probe import SourceInfo, probe
from .checks import DEFAULT_LIMITS, check_source
from .decode import decode
from .geometry import Geometry, oriented_size, plan_geometry, shrink_factor
from .pixels import Image, swap_red_blue, to_8bit_array
from .steps import upright

SIDE = 2048  # longest side of a reduced copy, in pixels
ELIGIBLE = 2 * SIDE  # originals with a longest side at least this large get one
_HEADER = struct.Struct("<4sIIIII")
_MAGIC = b"RIC2"


class BlobStore(Protocol):
    """What this module needs from the cache (VariantCache provides it)."""

    def get_blob(self, key: str) -> bytes | None: ...

    def put_blob(self, key: str, data: bytes, tag: str | None = None) -> None: ...

    def first_sight(self, key: str) -> bool: ...


@dataclass(frozen=True)
class Intermediate:
    image: Image  # upright, 8-bit, 1, 3 or 4 channels
    source_size: tuple[int, int]  # the original's upright (width, height)

    def serves(self, params: ImageParams, size: tuple[int, int] | None = None) -> bool:
        """Whether the result is no larger than the copy (or its part that ``rect`` cuts), so the copy
        loses it nothing. ``size`` is the original's as the result is planned, when rot= turns it."""
        size = size or self.source_size
        geometry = plan_geometry(*size, params)
        width, height = geometry.region[2:] if geometry.region else size
        scale = self.image.shape[1] / self.source_size[0]
        return bool(geometry.size[0] <= int(width * scale) and geometry.size[1] <= int(height * scale))

    def to_bytes(self) -> bytes:
        height, width = self.image.shape[:2]
        channels = 1 if self.image.ndim == 2 else self.image.shape[2]
        header = _HEADER.pack(_MAGIC, width, height, channels, *self.source_size)
        return header + np.ascontiguousarray(self.image).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Intermediate | None:
        if len(data) < _HEADER.size:
            return None
        magic, width, height, channels, source_w, source_h = _HEADER.unpack_from(data)
        if magic != _MAGIC or len(data) != _HEADER.size + width * height * channels:
            return None  # not ours, or cut short: never trusted
        pixels = np.frombuffer(data, np.uint8, offset=_HEADER.size)
        shape = (height, width) if channels == 1 else (height, width, channels)
        return cls(pixels.reshape(shape), (source_w, source_h))


def build(path: str, limits: Limits = DEFAULT_LIMITS, info: SourceInfo | None = None) -> Intermediate | None:
    """The reduced copy of the original at ``path``, or None if it is too small to need one."""
    info = info or probe(path)
    check_source(info, limits)
    declared = oriented_size(info)
    if declared is None or max(declared) < ELIGIBLE:
        return None
    scale = SIDE / max(declared)
    size = (max(1, round(declared[0] * scale)), max(1, round(declared[1] * scale)))
    reduction = shrink_factor(info, declared, Geometry(size))
    image, rgb = decode(path, info, reduction)
    image = upright(to_8bit_array(image), info.orientation)
    limits.check_deadline()
    reduced = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    reduced = to_srgb(swap_red_blue(reduced) if rgb else reduced, info.profile)
    return Intermediate(reduced, declared)  # in sRGB already: renders from it need no profile


def kept_copy(
    store: BlobStore, key: str, path: str, limits: Limits, info: SourceInfo, tag: str | None = None
) -> Intermediate | None:
    """The original's reduced copy when one is kept under ``key`` or now worth keeping (stored
    under ``tag``, the original's, so that a purge drops it with the variants); None for an
    original too small for one, an animation (a copy holds one frame), a vector (drawn at each
    size, never resized), or a first sight."""
    declared = oriented_size(info)
    if declared is None or max(declared) < ELIGIBLE or info.frames > 1 or info.vector:
        return None
    data = store.get_blob(key)
    copy = Intermediate.from_bytes(data) if data is not None else None
    if copy is None and not store.first_sight(key):  # seen before: a copy pays from now on
        copy = build(path, limits, info)
        if copy is not None:
            store.put_blob(key, copy.to_bytes(), tag)
    return copy

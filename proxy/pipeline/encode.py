"""Pixels -> bytes: one table of encoders, by output format (``ENCODERS``).

OpenCV writes every format but JPEG XL (its wheels have no libjxl); an entry hands its format to
imagecodecs where that does better: WebP at another effort than the method OpenCV fixes
(PROXY_WEBP_EFFORT), colour AVIF on more than one thread. An animation is written by OpenCV's
animation writer, for the formats whose entry finishes one. A new output format is a ``Format`` in
formats.py and an entry here.

OpenCV reports failure by return value or by ``cv2.error``, imagecodecs by its exceptions: here
both become a 400 naming ``fmt``, and nobody else checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import cv2
import imagecodecs

from ..errors import InvalidParameter
from ..formats import AVIF_SPEED, JXL_EFFORT, WEBP_EFFORT, Format
from . import avif
from .pixels import Image, swap_red_blue

# (pixels, format, quality 1..100, libwebp method) -> bytes, or None when the encoder refuses them
Still = Callable[[Image, Format, int, int], bytes | None]


class Encoder(NamedTuple):
    still: Still
    # OpenCV's animation writer takes the format: its bytes as served, given the plays (0: for ever).
    # None: an animated original is served as one frame.
    animation: Callable[[bytes, int], bytes] | None = None


def encode(image: Image, output: Format, quality: int, webp_effort: int = WEBP_EFFORT) -> bytes:
    """``image`` (BGR(A) or grey, 8-bit) as ``output``, by the format's entry in ``ENCODERS``."""
    try:
        data = ENCODERS[output.name].still(image, output, quality, webp_effort)
    except (cv2.error, imagecodecs.AvifError, imagecodecs.JpegxlError, imagecodecs.WebpError, ValueError):
        data = None
    if data is None:
        height, width = image.shape[:2]
        raise InvalidParameter("fmt", f"cannot encode a {width}x{height} image as {output.name}")
    return data


def encode_animation(animation: cv2.Animation, output: Format, quality: int, plays: int) -> bytes:
    """Frames and durations as ``output``, playing ``plays`` times, by OpenCV's animation writer."""
    finish = ENCODERS[output.name].animation
    if finish is None:
        raise InvalidParameter("fmt", f"cannot encode this animation as {output.name}")
    try:
        ok, buffer = cv2.imencodeanimation(output.extension, animation, output.encoder_flags(quality))
    except cv2.error:
        ok = False
    if not ok:
        raise InvalidParameter("fmt", f"cannot encode this animation as {output.name}")
    return finish(buffer.tobytes(), plays)


def _opencv(image: Image, output: Format, quality: int, webp_effort: int) -> bytes | None:
    ok, buffer = cv2.imencode(output.extension, image, output.encoder_flags(quality))
    return buffer.tobytes() if ok else None


def _webp(image: Image, output: Format, quality: int, webp_effort: int) -> bytes | None:
    """OpenCV's at its fixed method (WEBP_EFFORT); libwebp through imagecodecs at any other."""
    if webp_effort == WEBP_EFFORT:
        return _opencv(image, output, quality, webp_effort)
    colour = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)  # libwebp: colour
    rgb = swap_red_blue(colour)
    return bytes(imagecodecs.webp_encode(rgb, level=quality, lossless=False, method=webp_effort))


def _avif(image: Image, output: Format, quality: int, webp_effort: int) -> bytes | None:
    """A colour AVIF as OpenCV writes one (libavif at AVIF_SPEED, 4:2:0, tagged sRGB with BT.601
    coefficients, full range) but with libaom's threads, which OpenCV's writer leaves at one:
    sooner, for about the same bytes and the same PSNR (figures: docs/performance.md). Grey and
    alpha stay with OpenCV, whose bytes imagecodecs does not match."""
    if image.ndim != 3 or image.shape[2] != 3:
        return _opencv(image, output, quality, webp_effort)
    return bytes(
        imagecodecs.avif_encode(
            swap_red_blue(image),
            level=quality,
            speed=AVIF_SPEED,
            numthreads=cv2.getNumThreads(),  # as many as OpenCV's own steps use
            pixelformat=imagecodecs.AVIF.PIXEL_FORMAT.YUV420,
            primaries=1,  # BT.709, sRGB's
            transfer=13,  # sRGB
            matrix=6,  # BT.601
        )
    )


def _jxl(image: Image, output: Format, quality: int, webp_effort: int) -> bytes | None:
    """libjxl through imagecodecs, on OpenCV's thread count: the same bytes as on one thread,
    sooner (figures: docs/performance.md)."""
    return bytes(
        imagecodecs.jpegxl_encode(
            swap_red_blue(image), level=quality, effort=JXL_EFFORT, numthreads=cv2.getNumThreads()
        )
    )


def _as_written(data: bytes, plays: int) -> bytes:
    return data  # OpenCV's WebP writer keeps the loop count itself


ENCODERS: dict[str, Encoder] = {
    "jpeg": Encoder(_opencv),
    "png": Encoder(_opencv),
    "webp": Encoder(_webp, animation=_as_written),
    "avif": Encoder(_avif, animation=avif.finished),
    "jxl": Encoder(_jxl),
}

"""The original's bytes -> pixels: one table of decoders, tried in order, OpenCV last.

Each row of ``DECODERS`` names the originals it takes, from their probed header, and reads them. A
row that finds a file is not its after all (imagecodecs and a PNG that is not the colour layout it
declared, libwebp and a one-frame animation) returns None, and the next row that takes it tries.
What a decoder raises for a file it cannot read is a 415: no other row tries. OpenCV, last, takes
every file. A new input format, or a faster library for one, is a new row.

Orientation is left to the ``orient`` step, and the channels in the decoder's order (``Decoded``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import cv2
import imagecodecs
import numpy as np
import pi_heif
from PIL import Image as PILImage

from .. import libwebp
from ..color import cmyk_to_bgr, converts
from ..errors import UnsupportedImage
from ..probe import SourceInfo, truncated
from . import svg
from .checks import DEFAULT_LIMITS
from .geometry import scales_webp
from .pixels import Image, has_alpha


class Decoded(NamedTuple):
    """A decoder's pixels, and whether their channels are in RGB(A) order, as imagecodecs hands
    them over. They stay so through ``cut`` and ``resize``, which do not care, and the ``bgr`` step
    swaps them for OpenCV once the image is small: a pass over the full-size pixels saved."""

    image: Image
    rgb: bool = False


# A decoder's refusal, or a file gone: a 415.
_REFUSALS: tuple[type[BaseException], ...] = (cv2.error, imagecodecs.PngError, MemoryError, OSError)


class Decoder(NamedTuple):
    """One way to read originals: ``read(path, info, reduction)`` returns the pixels, shrunk on
    decode by ``reduction`` where it can (geometry.shrink_factor), or None to hand the file on."""

    name: str
    takes: Callable[[SourceInfo], bool]
    read: Callable[[str, SourceInfo, int], Decoded | None]
    refusals: tuple[type[BaseException], ...] = _REFUSALS  # what it raises for a file it cannot read


def decode(path: str, info: SourceInfo, reduction: int = 1) -> Decoded:
    """The original at ``path``, from the first row of ``DECODERS`` that takes it and keeps it."""
    decoded = _first(path, info, reduction)
    if decoded is None or decoded.image.size == 0:
        raise UnsupportedImage(f"could not decode the {info.format.upper()} source")
    return Decoded(_repaired(decoded.image, info), decoded.rgb)


def _first(path: str, info: SourceInfo, reduction: int) -> Decoded | None:
    for decoder in DECODERS:
        if decoder.takes(info):
            try:
                decoded = decoder.read(path, info, reduction)
            except decoder.refusals:
                return None
            if decoded is not None:
                return decoded
    return None


def _repaired(image: Image, info: SourceInfo) -> Image:
    """Grey or BGR, with alpha only where some pixel is not opaque, whatever the decoder."""
    if info.transparent is not None and image.ndim == 2:  # grey + tRNS, which OpenCV ignores
        image = _keyed_alpha(image, info.transparent, info.depth)
    if image.ndim == 3 and image.shape[2] == 2:  # gray + alpha
        image = np.dstack((image[..., 0], image[..., 0], image[..., 0], image[..., 1]))
    if image.ndim == 3 and image.shape[2] == 4 and not has_alpha(image):
        image = image[..., :3]
    return image


def read_original(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


# --- the decoders -----------------------------------------------------------------------------

# pi_heif reads only what is asked of it: the primary image's pixels, not its thumbnails, depth
# maps or auxiliary images (alpha is part of the image).
pi_heif.options.THUMBNAILS = pi_heif.options.DEPTH_IMAGES = pi_heif.options.AUX_IMAGES = False


def _cmyk(info: SourceInfo) -> bool:
    return info.format == "jpeg" and info.channels == 4


def _decode_cmyk(path: str, info: SourceInfo, reduction: int) -> Decoded:
    """A CMYK or YCCK JPEG, through Pillow (OpenCV would drop the ink values' meaning), shrunk on
    decode as libjpeg allows, then from its profile, or a press profile, to sRGB."""
    try:
        with PILImage.open(path) as original:
            if reduction > 1 and original.width and original.height:
                original.draft("CMYK", (-(-original.width // reduction), -(-original.height // reduction)))
            original.load()
            if original.mode != "CMYK":
                raise UnsupportedImage("a four-channel JPEG that is not CMYK")
            return Decoded(cmyk_to_bgr(original, info.profile))
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError):
        raise UnsupportedImage("could not decode the CMYK JPEG source") from None


def _inflates_faster(info: SourceInfo) -> bool:
    """Colour PNGs (RGB, RGBA, palette; 8 or 16 bits; not interlaced): imagecodecs' libpng inflates
    with zlib-ng, OpenCV's with the system zlib, faster for the same pixels, 16 bits too (kept until
    after the resize; figures: docs/performance.md). They come in RGB order (``Decoded``). Grey and
    grey + alpha gain nothing, and interlaced files make that libpng warn on stderr: those stay with
    OpenCV."""
    return info.format == "png" and info.depth in (8, 16) and info.channels in (3, 4) and not info.interlaced


def _decode_png(path: str, info: SourceInfo, reduction: int) -> Decoded | None:
    try:
        image = imagecodecs.png_decode(read_original(path))
    except ValueError:  # not the colour layout it was declared to be
        return None
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        return None
    return Decoded(image, rgb=True)  # imagecodecs' order


def _decode_webp(path: str, info: SourceInfo, reduction: int) -> Decoded | None:
    """A still WebP through libwebp.py, with a reduction scaled while decoding to the size libjpeg
    would give for the same one (rounded up), so that the steps treat both alike."""
    if reduction > 1 and info.width and info.height:
        size = (-(-info.width // reduction), -(-info.height // reduction))
        image = libwebp.decode(read_original(path), size)
    else:
        image = libwebp.decode(read_original(path))
    return Decoded(image) if image is not None else None


def _heif(info: SourceInfo) -> bool:
    return info.format == "heif"


def _decode_heif(path: str, info: SourceInfo, reduction: int) -> Decoded:
    """The primary image of a HEIF, through libheif (pi_heif), which applies the item's crop,
    rotation and mirroring (probe/heif.py declares the size so turned); 10 and 12-bit images come
    as 16 bits, kept until after the resize like a 16-bit PNG's. In RGB order (``Decoded``)."""
    pi_heif.options.DECODE_THREADS = cv2.getNumThreads()  # tiles on as many threads as OpenCV's steps
    heif = pi_heif.open_heif(read_original(path), convert_hdr_to_8bit=False)
    return Decoded(np.asarray(_Held(heif)), rgb=True)


class _Held:
    """libheif's pixels, for as long as an array of them lives. pi_heif's own array interface hands
    numpy a memoryview of memory that its file object frees when collected, which the array does not
    keep: this object keeps the file, and numpy keeps this object (the array's base). No copy."""

    def __init__(self, heif: pi_heif.HeifFile) -> None:
        self.heif = heif
        self.__array_interface__ = np.asarray(heif).__array_interface__  # its address, shape, type


_HEIF_REFUSALS = (ValueError, EOFError, SyntaxError, RuntimeError, MemoryError, OSError)  # pi_heif's


def _jxl(info: SourceInfo) -> bool:
    return info.format == "jxl"


def _decode_jxl(path: str, info: SourceInfo, reduction: int) -> Decoded:
    """A JPEG XL through imagecodecs' libjxl: its first frame, in the stored orientation (the
    ``orient`` step turns it once small), samples of more than 8 bits scaled to 16. libjxl asks
    for more input rather than fill what a cut file lacks: that is a truncated original."""
    try:
        image = imagecodecs.jpegxl_decode(
            read_original(path), 0, keeporientation=True, numthreads=cv2.getNumThreads()
        )
    except imagecodecs.JpegxlError as error:
        if "NEED_MORE_INPUT" in str(error):
            raise truncated("jxl") from None
        raise UnsupportedImage("could not decode the JPEG XL source") from None
    except (ValueError, RuntimeError, MemoryError):
        raise UnsupportedImage("could not decode the JPEG XL source") from None
    if image.dtype.kind == "f":  # float samples, nominally 0..1
        image = (np.clip(image, 0, 1) * 65535 + 0.5).astype(np.uint16)
    elif image.dtype == np.uint16 and 8 < info.depth < 16:  # 10 or 12 bits, as stored: fill 16
        image = (image << (16 - info.depth)) | (image >> (2 * info.depth - 16))
    return Decoded(image, rgb=True)


def _vector(info: SourceInfo) -> bool:
    return info.vector


def _draw_svg(path: str, info: SourceInfo, reduction: int) -> Decoded:
    """An SVG drawn whole at its declared size, within the default limits (svg.py), for a caller
    that decodes: render draws one at the planned size instead, within its own."""
    return Decoded(svg.whole(path, DEFAULT_LIMITS), rgb=True)


_REDUCED = {
    (False, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (False, 4): cv2.IMREAD_REDUCED_COLOR_4,
    (False, 8): cv2.IMREAD_REDUCED_COLOR_8,
    (True, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (True, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (True, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def _anything(info: SourceInfo) -> bool:
    return True


def _decode_opencv(path: str, info: SourceInfo, reduction: int) -> Decoded | None:
    """Every file the rows above do not keep; JPEG shrunk on decode (libjpeg's DCT)."""
    flags = _opencv_flags(info, reduction)
    if info.format == "jpeg":  # from memory, whole (probe checked its end): shrink-on-decode ran faster
        image = cv2.imdecode(np.frombuffer(read_original(path), np.uint8), flags)
    else:  # no such gain for the others, and BMP decoded far slower that way
        image = cv2.imread(path, flags)
    return Decoded(image) if image is not None else None


def _opencv_flags(info: SourceInfo, reduction: int) -> int:
    if info.format == "jpeg":
        gray = info.channels == 1
        base = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
        return (_REDUCED[gray, reduction] if reduction > 1 else base) | cv2.IMREAD_IGNORE_ORIENTATION
    if (
        info.format == "png"
        and info.depth == 16
        and info.channels in (1, 3)
        and not converts(info.profile, info.channels == 1)
    ):
        # Opaque 16-bit that imagecodecs does not take (grey, interlaced): libpng scales to 8 bits
        # while decoding (rounding, as to_8bit does), sooner than it decodes 16, and every later
        # step then runs on smaller samples. Not when a profile is to be applied: that starts from
        # all 16 bits.
        base = cv2.IMREAD_GRAYSCALE if info.channels == 1 else cv2.IMREAD_COLOR
        return base | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.IMREAD_UNCHANGED  # keeps alpha and 16 bits


DECODERS: tuple[Decoder, ...] = (
    # Pillow turns its own refusals into a 415, naming CMYK; OpenCV would drop the inks' meaning.
    Decoder("CMYK JPEG: Pillow", _cmyk, _decode_cmyk, refusals=()),
    Decoder("colour PNG: imagecodecs", _inflates_faster, _decode_png),
    Decoder("WebP still: libwebp.py", scales_webp, _decode_webp),
    Decoder("HEIF: libheif (pi_heif)", _heif, _decode_heif, refusals=_HEIF_REFUSALS),
    # Refuses with its own message (a cut file is "truncated"); OpenCV's wheels read no JPEG XL.
    Decoder("JPEG XL: libjxl (imagecodecs)", _jxl, _decode_jxl, refusals=()),
    # Drawn, not decoded; refuses with its own statuses (413 too): svg.py, drawing.py.
    Decoder("SVG: resvg, at its declared size", _vector, _draw_svg, refusals=()),
    Decoder("anything: OpenCV", _anything, _decode_opencv),
)


def _keyed_alpha(image: Image, value: int, depth: int) -> Image:
    """Grey + tRNS -> BGRA: pixels of the transparent sample ``value`` get alpha 0.

    libpng hands low bit depths over expanded to 8 bits (a 4-bit v as v x 17), so the value is
    expanded the same way; 16-bit samples are compared as they are.
    """
    top = 65535 if image.dtype == np.uint16 else 255
    key = value if depth == 16 else value * (255 // ((1 << depth) - 1))
    alpha = np.where(image == key, 0, top).astype(image.dtype)
    keyed: Image = cv2.merge([image, image, image, alpha])
    return keyed

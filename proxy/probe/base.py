"""What every probe module shares: the values a probe answers (SourceInfo, Kind), the errors it
raises, and the limits and checks more than one format needs.

The package's modules import these from here, never from the package itself (``proxy.probe``,
which imports them to dispatch to them), so that no module of the package needs its face to load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..errors import UnsupportedImage

MAX_SCAN = 64 << 20  # bytes of a GIF read to count its frames (the source limit is lower by default)
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
    format: str  # jpeg, png, webp, gif, bmp, tiff, avif, heif, jxl, svg
    width: int | None  # as stored, before orientation; None where the header does not say
    # (HEIF: as decoded, libheif having applied its rotation and crop; see heif.py)
    height: int | None
    orientation: int = 1  # EXIF orientation, 1..8
    channels: int | None = None  # JPEG: 1 gray, 3 YCbCr, 4 CMYK; PNG: 1 gray, 3 colour, +1 with alpha
    depth: int = 8  # bits per sample (PNG: 16 possible)
    bytes: int = 0  # file size
    profile: Profile | None = None  # the embedded ICC profile (JPEG, PNG, WebP, TIFF, AVIF, HEIF, JPEG XL)
    transparent: int | None = None  # PNG grey + tRNS: the sample value that is transparent
    frames: int = 1  # GIF, WebP and APNG animations: how many frames the file declares
    plays: int | None = None  # AVIF sequences: times played, 0 for ever (OpenCV reads the others')
    alpha: bool = False  # declares transparency (a channel, a colour, a plane); True where unsure
    interlaced: bool = False  # PNG: Adam7
    coded_pixels: int = 0  # HEIF: what the decoder allocates (ispe), before the clean aperture crops it

    @property
    def pixels(self) -> int:
        """The pixels a decode allocates per frame, as declared: what the source limit counts."""
        return max((self.width or 0) * (self.height or 0), self.coded_pixels)

    @property
    def vector(self) -> bool:
        """An SVG: drawn at the size asked for (pipeline/svg.py), so its declared size is no cost."""
        return self.format == "svg"

    @property
    def kind(self) -> Kind:
        return Kind(self.format, self.frames > 1, self.alpha)

    @property
    def transposed(self) -> bool:
        """Orientations 5..8 swap width and height."""
        return self.orientation >= 5


def _malformed(kind: str) -> UnsupportedImage:
    return UnsupportedImage(f"malformed {kind} header")


def _truncated(kind: str) -> UnsupportedImage:
    return UnsupportedImage(f"truncated {kind.upper()}: the file ends before the image does")


def _valid_orientation(value: int) -> int:
    return value if 1 <= value <= 8 else 1

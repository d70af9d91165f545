"""What an original says about itself besides its pixels: an EXIF subset and its colour profile's
name, read from the header, never by decoding.

EXIF is read by Pillow from the block its opener keeps (JPEG's APP1, PNG's ``eXIf`` before the
first ``IDAT``, WebP's and AVIF's ``EXIF`` chunk or item, a TIFF's own first IFD; ``Image.open``
reads headers only, and ``getexif`` is asked of TIFF alone, since PNG's would decode the image
to look for a chunk after its pixels), and by pi_heif from a HEIF's ``Exif`` item. GIF and BMP
carry none; JPEG XL keeps it in a box neither library reads: those answer every field null.

The subset: orientation, make, model, date taken (``DateTimeOriginal`` as ISO 8601, with
``OffsetTimeOriginal`` when the camera wrote one), copyright, artist; and the position (GPS)
only when asked for (PROXY_INFO_GPS), since a photo's position is often a home's. A field that
is absent, malformed or empty is null; a block that cannot be read is as good as none.
"""

from __future__ import annotations

import io
import logging
import math
import re
import struct
from datetime import datetime
from typing import Any

import pi_heif
from PIL import Image, ImageCms

log = logging.getLogger(__name__)

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
ORIENTATION, MAKE, MODEL, ARTIST, COPYRIGHT = 0x0112, 0x010F, 0x0110, 0x013B, 0x8298
DATE_TAKEN, DATE_OFFSET = 0x9003, 0x9011  # DateTimeOriginal, OffsetTimeOriginal (ExifIFD)
LATITUDE_REF, LATITUDE, LONGITUDE_REF, LONGITUDE, ALTITUDE_REF, ALTITUDE = 1, 2, 3, 4, 5, 6
TEXT = 256  # characters kept of a text field: EXIF fields are names, not essays
PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF", "avif": "AVIF"}
# What a malformed block makes Pillow raise while reading it; any of them means "no EXIF".
_UNREADABLE = (OSError, ValueError, SyntaxError, struct.error, TypeError, KeyError, IndexError, EOFError)
_DATE = re.compile(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")


def exif_subset(path: str, format: str, gps: bool = False) -> dict[str, Any]:
    """The subset of the EXIF of the original at ``path`` (probed as ``format``): each of its six
    fields, None when absent, and ``gps`` (a dict, or None) only when ``gps`` is asked for."""
    ifd0, details, position = _read(path, format)
    orientation = ifd0.get(ORIENTATION)
    subset: dict[str, Any] = {
        "orientation": orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else None,
        "make": _text(ifd0.get(MAKE)),
        "model": _text(ifd0.get(MODEL)),
        "date_taken": _date(details.get(DATE_TAKEN), details.get(DATE_OFFSET)),
        "copyright": _text(ifd0.get(COPYRIGHT)),
        "artist": _text(ifd0.get(ARTIST)),
    }
    if gps:
        subset["gps"] = _position(position)
    return subset


def profile_description(profile: bytes | None) -> str | None:
    """The ICC profile's description (its ``desc`` tag, as LittleCMS reads it), or None."""
    if not profile:
        return None
    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    return _text(description)


Tags = dict[int, Any]


def _read(path: str, format: str) -> tuple[Tags, Tags, Tags]:
    """The original's first IFD, its Exif IFD and its GPS IFD, each empty when absent or unreadable.

    Read while the file is open: Pillow reads a TIFF's sub-IFDs from the file when asked for them.
    A malformed block raises, or warns (tests turn warnings into errors): either is "no EXIF"."""
    try:
        if format == "heif":
            return _tags(pi_heif.open_heif(path).info.get("exif"))
        if format not in PILLOW_FORMATS:
            return {}, {}, {}
        with Image.open(path, formats=[PILLOW_FORMATS[format]]) as image:
            if format == "tiff":  # a TIFF's EXIF is its own first IFD, read with the header
                return _tags(image.getexif())
            return _tags(image.info.get("exif"))
    except (*_UNREADABLE, UserWarning, Image.DecompressionBombError, RuntimeError) as error:
        log.info("unreadable EXIF in %s: %s", path, error)  # the original renders; it has no EXIF here
        return {}, {}, {}


def _tags(block: object) -> tuple[Tags, Tags, Tags]:
    """A block's three IFDs as plain dicts: raw bytes ("Exif\\0\\0" and a TIFF header, or the
    header alone) or what Pillow has read of it already."""
    if isinstance(block, Image.Exif):
        exif = block
    elif isinstance(block, bytes) and block:
        exif = Image.Exif()
        exif.load(block)
    else:
        return {}, {}, {}
    return dict(exif), dict(exif.get_ifd(EXIF_IFD)), dict(exif.get_ifd(GPS_IFD))


def _text(value: object) -> str | None:
    """A text field as shown: UTF-8 where it is, NULs between parts (EXIF's
    "photographer\\0editor" copyright) made "; ", control characters dropped, trimmed, at most
    TEXT characters; None when empty or not text."""
    if isinstance(value, str) and not value.isascii():
        try:  # Pillow reads EXIF text as Latin-1; editors write UTF-8 ("©" arrives as "Â©")
            value = value.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass  # Latin-1 it was
    if not isinstance(value, str):
        return None
    parts = ("".join(c for c in part if c.isprintable()).strip() for part in value.split("\0"))
    text = "; ".join(part for part in parts if part)[:TEXT]
    return text or None


def _date(value: object, offset: object) -> str | None:
    """``2024:05:01 14:03:59`` -> ``2024-05-01T14:03:59``, with ``+02:00`` when the offset is
    known; None when it is not a real date (cameras write ``0000:00:00 00:00:00`` or blanks)."""
    match = _DATE.fullmatch(value.strip("\0 ")) if isinstance(value, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        taken = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    zone = offset.strip("\0 ") if isinstance(offset, str) else ""
    return taken.isoformat() + (zone if _OFFSET.fullmatch(zone) else "")


def _position(gps: dict[int, Any]) -> dict[str, float] | None:
    """Latitude and longitude in signed decimal degrees (7 places: a centimetre), and the
    altitude in metres when recorded; None without a valid latitude and longitude."""
    latitude = _degrees(gps.get(LATITUDE), gps.get(LATITUDE_REF), "S", 90)
    longitude = _degrees(gps.get(LONGITUDE), gps.get(LONGITUDE_REF), "W", 180)
    if latitude is None or longitude is None:
        return None
    position = {"latitude": latitude, "longitude": longitude}
    altitude = _number(gps.get(ALTITUDE))
    if altitude is not None:
        below = gps.get(ALTITUDE_REF) in (1, b"\x01")  # 1: below sea level
        position["altitude"] = round(-altitude if below else altitude, 2)
    return position


def _degrees(value: object, reference: object, negative: str, bound: float) -> float | None:
    """Degrees, minutes, seconds (three rationals) and a reference (N/S, E/W) -> signed degrees."""
    if not isinstance(value, tuple) or len(value) != 3:
        return None
    numbers = [_number(part) for part in value]
    if None in numbers:
        return None
    degrees, minutes, seconds = (number for number in numbers if number is not None)
    total = degrees + minutes / 60 + seconds / 3600
    if not 0 <= total <= bound:
        return None
    sign = -1 if isinstance(reference, str) and reference.strip("\0 ").upper() == negative else 1
    return round(sign * total, 7)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]  # IFDRational, int, float
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None

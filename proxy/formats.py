"""Output formats: names, MIME types, encoder flags, and negotiation from ``Accept``.

Choosing the output happens in two stages. The request's ``fmt`` and ``Accept``
header reduce to a *target*: a format name, ``SOURCE`` (keep the original's format)
or ``LEGACY`` (JPEG, or PNG when the original declares transparency). ``resolve``
then names the format from what the original's header declares (probe.Kind), so
that the cache key and ETag name the format produced, however it was asked for:
``w=300``, ``w=300&fmt=jpeg`` and ``fmt=auto`` answered with JPEG are one variant.
Deciding from the header, as libvips-based servers do, means an RGBA PNG whose
alpha is all opaque is still a PNG for a client that takes neither AVIF nor WebP.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import imagecodecs
import numpy as np
from werkzeug.http import parse_accept_header

from .probe import Kind

SOURCE = "source"
LEGACY = "jpeg|png"
BEST = "best:"  # fmt=best's target: "best:" and the formats to try, which resolve completes
# Originals served without ``fmt`` as LEGACY: phones' and cameras' formats that most browsers
# cannot show (Safari alone shows both), whose users expect a JPEG, not a PNG of a photo.
_PHOTOS = ("heif", "jxl")


@dataclass(frozen=True)
class Format:
    name: str
    mime: str
    extension: str
    alpha: bool  # keeps an alpha channel; otherwise alpha is flattened onto bg
    lossy: bool
    candidates: tuple[Format, ...] = ()  # fmt=best: each is encoded, and the smallest is served

    def encoder_flags(self, quality: int) -> list[int]:
        """OpenCV ``imencode`` parameters for this format at ``quality`` (1..100); JPEG XL is
        encoded by imagecodecs (pipeline/encode.py), OpenCV's wheels having no libjxl."""
        if self.name == "jpeg":
            return [cv2.IMWRITE_JPEG_QUALITY, quality]
        if self.name == "webp":
            return [cv2.IMWRITE_WEBP_QUALITY, quality]
        if self.name == "avif":
            return [cv2.IMWRITE_AVIF_QUALITY, quality, cv2.IMWRITE_AVIF_SPEED, AVIF_SPEED]
        # Run-length zlib after PNG's row filters: on photographic thumbnails it was both the
        # fastest and the smallest, against zlib levels 3 and 6. Flat graphics still compress, as
        # runs. Row filters: libpng tries all five per row by default; trying only none, sub and
        # up encodes a photo much sooner for a few more bytes (still fewer than libvips' PNG), and
        # flat graphics keep their size; sub alone was faster but made flat graphics much larger
        # (figures: docs/performance.md).
        return [
            cv2.IMWRITE_PNG_COMPRESSION,
            1,
            cv2.IMWRITE_PNG_STRATEGY,
            cv2.IMWRITE_PNG_STRATEGY_RLE,
            cv2.IMWRITE_PNG_FILTER,
            cv2.IMWRITE_PNG_FAST_FILTERS,
        ]


# libjxl's effort, 1..9: 3 is far sooner but its files far larger, 7 (libjxl's default) takes much
# longer than 5 for the same bytes. 5 is where the bytes are, at most about AVIF's time (figures:
# docs/performance.md).
JXL_EFFORT = 5
AVIF_SPEED = 8  # libavif's slowest speeds cost seconds per image; 8 keeps a miss interactive
WEBP_EFFORT = 4  # libwebp's default method, the one OpenCV's encoder uses (PROXY_WEBP_EFFORT changes it)


def _writable(extension: str) -> bool:
    """Whether this build can encode ``extension`` (AVIF is optional in OpenCV's)."""
    if extension == ".jxl":
        return bool(imagecodecs.JPEGXL.available)
    try:
        ok, _ = cv2.imencode(extension, np.zeros((8, 8, 3), np.uint8))
    except cv2.error:
        return False
    return bool(ok)


PNG = Format("png", "image/png", ".png", alpha=True, lossy=False)
JPEG = Format("jpeg", "image/jpeg", ".jpg", alpha=False, lossy=True)
WEBP = Format("webp", "image/webp", ".webp", alpha=True, lossy=True)
AVIF = Format("avif", "image/avif", ".avif", alpha=True, lossy=True)
JXL = Format("jxl", "image/jxl", ".jxl", alpha=True, lossy=True)

FORMATS: dict[str, Format] = {f.name: f for f in (PNG, JPEG, WEBP, AVIF, JXL) if _writable(f.extension)}
REQUESTABLE = (*FORMATS, "auto", "best")  # the values ``fmt`` accepts


@functools.lru_cache(maxsize=64)
def format_named(name: str) -> Format:
    """The format a resolved name produces: one of FORMATS, or for ``best:avif,webp,jpeg`` the
    formats to try (pipeline.finish keeps the smallest), which keeps alpha if each of them does."""
    if not name.startswith(BEST):
        return FORMATS[name]
    candidates = tuple(FORMATS[part] for part in name.removeprefix(BEST).split(","))
    return Format(name, "", "", all(c.alpha for c in candidates), True, candidates)


def mime_of(head: bytes) -> str | None:
    """The type of bytes we encoded, from their first 12: how the cache knows what it serves."""
    if head.startswith(b"\x89PNG"):
        return PNG.mime
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG.mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP.mime
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return AVIF.mime
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):  # codestream, container
        return JXL.mime
    return None


def negotiate(requested: str | None, accept: str, order: tuple[str, ...] = ("avif", "webp")) -> str:
    """The request's target: ``requested`` itself, or for ``auto`` the first format of ``order``
    (PROXY_AUTO_FORMATS) the client names in its ``Accept`` header (read only then: a hit with
    an explicit format never parses it).

    Only types listed by name with a q-value above 0 count: ``*/*`` and
    ``image/*`` say nothing about what a client can decode, so they never
    select AVIF or WebP.
    """
    if requested is None:
        return SOURCE
    if requested not in ("auto", "best"):
        return requested
    named = {value.lower() for value, quality in parse_accept_header(accept) if quality > 0}
    if requested == "best":  # what the client takes of the formats that can beat JPEG and PNG
        return BEST + ",".join(
            name for name in ("avif", "webp") if name in FORMATS and FORMATS[name].mime in named
        )
    for name in order:
        if name in FORMATS and FORMATS[name].mime in named:
            return name
    return LEGACY


def resolve(target: str, kind: Kind, frame: int | None = None) -> str:
    """The name of the format ``target`` produces for an original of ``kind``.

    Kept as it is: JPEG, PNG and WebP originals, and animations as WebP (which animates) unless
    one ``frame`` is asked for. Camera formats few browsers show (HEIF, JPEG XL) become what any
    browser shows, as ``LEGACY`` does: JPEG for a photo, PNG when it declares alpha. Other
    originals become PNG, which keeps any alpha losslessly.
    """
    if target == SOURCE:
        if kind.animated and frame is None and "webp" in FORMATS:
            return "webp"
        if kind.format in _PHOTOS:
            target = LEGACY
        else:
            return kind.format if kind.format in ("png", "jpeg", "webp") and kind.format in FORMATS else "png"
    if target.startswith(BEST):  # the formats taken, and JPEG, or PNG for what declares alpha
        modern = [name for name in target.removeprefix(BEST).split(",") if name]
        if kind.animated and frame is None:  # an animation is not encoded thrice: the first that animates
            return modern[0] if modern else resolve(LEGACY, kind, frame)
        tried = [*modern, "png" if kind.alpha else "jpeg"]
        return tried[0] if len(tried) == 1 else BEST + ",".join(tried)
    if target == LEGACY:
        return "png" if kind.alpha else "jpeg"
    return target

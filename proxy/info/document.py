"""The /info document of one original: what its header declares, what its EXIF says, and what a
small thumbnail of it shows (colours, placeholders).

Everything comes from three reads: the header (probe: format, declared size, frames, alpha, the
ICC profile; Pillow or pi_heif: EXIF), one decode to a thumbnail of at most ``THUMBNAIL`` pixels
on the longer side through the pipeline (shrunk on decode, upright, converted to sRGB from its
profile, 8-bit: what a variant of that size would show), and for an animation, its frames decoded
once more for their durations. It is checked against the limits before any of them, as a render is.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import SourceTooLarge
from ..formats import PNG
from ..limits import Limits
from ..params import ImageParams
from ..pipeline import check_source, decode, oriented_size, plan_geometry, shrink_factor, stepped
from ..pipeline.geometry import orient_size
from ..probe import SourceInfo, probe
from .colors import average, dominant
from .exif import exif_subset, profile_description
from .placeholders import blurhash, thumbhash

THUMBNAIL = 64  # pixels on the longer side: enough for the colours and both placeholders
_TO_RGBA = {1: cv2.COLOR_GRAY2RGBA, 3: cv2.COLOR_BGR2RGBA, 4: cv2.COLOR_BGRA2RGBA}

Pixels = npt.NDArray[np.uint8]


def describe(path: str, limits: Limits, gps: bool = False) -> dict[str, Any]:
    """The document of the original at ``path`` (its id is the caller's to add). Raises what a
    render would: UnsupportedImage, SourceTooLarge, Overloaded past the deadline."""
    info = probe(path)
    check_source(info, limits)  # before a single pixel is allocated
    pixels, (width, height) = thumbnail(path, info, limits)
    frames, duration = animation(path, info, limits)
    return {
        "format": info.format,
        "width": width,  # upright: after the EXIF orientation
        "height": height,
        "bytes": info.bytes,
        "frames": frames,
        "duration_ms": duration,
        "alpha": info.alpha,  # declared, as fmt=auto decides between JPEG and PNG
        "profile": profile_description(info.profile),
        "exif": exif_subset(path, info.format, gps),
        "colors": {"average": average(pixels), "dominant": dominant(pixels)},
        "blurhash": blurhash(on_white(pixels)),
        "thumbhash": thumbhash(pixels),
    }


def thumbnail(path: str, info: SourceInfo, limits: Limits) -> tuple[Pixels, tuple[int, int]]:
    """The original (an animation's first frame) upright, in sRGB, as 8-bit RGBA of at most
    THUMBNAIL pixels on its longer side; and its upright size, as declared or, for an original
    whose header declares none, as decoded."""
    params = ImageParams(width=THUMBNAIL, height=THUMBNAIL)  # fit inside, never enlarged
    declared = oriented_size(info)
    reduction = shrink_factor(info, declared, plan_geometry(*declared, params)) if declared else 1
    image, rgb = decode(path, info, reduction)
    limits.check_deadline()
    size = declared or orient_size(image.shape[1], image.shape[0], info)
    pixels = stepped(image, size, info.orientation, params, PNG, limits, info.profile, rgb)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rgba = np.asarray(cv2.cvtColor(pixels, _TO_RGBA[channels]), np.uint8)
    return rgba, size


def animation(path: str, info: SourceInfo, limits: Limits) -> tuple[int, int | None]:
    """An animation's frame count and total duration in milliseconds, as OpenCV decodes it (the
    durations an animated variant keeps); a still's 1 and None. The header's count stands when
    the frames cannot be decoded: the still is served all the same."""
    if info.frames <= 1:
        return 1, None
    data = np.fromfile(path, np.uint8)
    try:
        ok, decoded = cv2.imdecodeanimation(data, 0, limits.max_animation_frames + 1)
    except (cv2.error, MemoryError):
        ok = False
    limits.check_deadline()
    if not ok or not decoded.frames:
        return info.frames, None
    if len(decoded.frames) > limits.max_animation_frames:  # the header said fewer: refused, as a render is
        raise SourceTooLarge(f"the original has over {limits.max_animation_frames} frames")
    return len(decoded.frames), int(sum(decoded.durations))


def on_white(rgba: Pixels) -> Pixels:
    """RGB composited on white, as a JPEG variant is flattened by default (BlurHash has no alpha)."""
    alpha = rgba[..., 3:].astype(np.uint32)
    flat = (rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return flat.astype(np.uint8)

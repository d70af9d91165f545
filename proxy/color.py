"""Colour management: pixels in an original's embedded ICC profile -> plain sRGB.

OpenCV decodes the stored numbers and ignores the profile, so a Display P3 or Adobe RGB
photo would come out desaturated, and a profile that swaps primaries with swapped colours.
LittleCMS (through Pillow's ImageCms) converts them, perceptual intent, after the image
has been resized and cropped, so the cost is on the small image. The output carries no
profile: it is sRGB, which is what viewers that ignore profiles assume.

A transform is built once per profile (keyed by its hash) and kept in a bounded LRU. A
profile that maps onto sRGB within a rounding (sRGB under any of its many names) is
recognised the first time it is seen, by converting a probe of colours, and its images
are passed through untouched, as are untagged ones. A profile LittleCMS cannot read is
ignored, with one warning per profile: the image is served as decoded, never a 500.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image as PILImage
from PIL import ImageCms

Pixels = npt.NDArray[Any]

log = logging.getLogger(__name__)

TRANSFORMS = 64  # profiles whose transforms are kept, per worker
# What a CMYK JPEG without a profile of its own is taken to be in: a SWOP-like press (CC0).
DEFAULT_CMYK = (Path(__file__).parent / "data" / "cmyk.icc").read_bytes()
# The output: a compact sRGB v4 profile (CC0); LittleCMS applied transforms to it ~25% faster than
# to its own built-in sRGB (4.5 against 6.0 ms for a 400x267 image, bench/color.py's machine).
_SRGB = ImageCms.ImageCmsProfile(str(Path(__file__).parent / "data" / "srgb.icc"))
_PROBE = np.array(  # primaries, secondaries, greys and a few mixed colours, as RGB
    [[0, 0, 0], [255, 255, 255], [128, 128, 128], [255, 0, 0], [0, 255, 0], [0, 0, 255]]
    + [[255, 255, 0], [0, 255, 255], [255, 0, 255], [64, 128, 192], [200, 120, 40], [30, 60, 90]],
    np.uint8,
)


def to_srgb(image: Pixels, profile: bytes | None) -> Pixels:
    """``image`` (8-bit gray, BGR or BGRA, as OpenCV decodes) converted from ``profile`` to sRGB."""
    if not profile:
        return image
    gray = image.ndim == 2
    transform = _transform(hashlib.sha256(profile).hexdigest(), profile, "L" if gray else "RGB")
    if transform is None:
        return image
    if gray:  # a grey profile to sRGB gives equal channels: keep one, so grey stays grey
        converted = np.asarray(ImageCms.applyTransform(PILImage.fromarray(image), transform))
        grey: Pixels = np.ascontiguousarray(converted[..., 1])
        return grey
    colour = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    converted = np.asarray(ImageCms.applyTransform(PILImage.fromarray(colour), transform))
    result: Pixels = cv2.cvtColor(converted, cv2.COLOR_RGB2BGR)
    if image.shape[2] == 4:
        result = np.dstack((result, image[..., 3]))
    return result


def cmyk_to_bgr(image: PILImage.Image, profile: bytes | None) -> Pixels:
    """A CMYK (or YCCK) image, as Pillow decodes it, in its profile or the default one -> sRGB, BGR."""
    source = profile if profile else DEFAULT_CMYK
    transform = _transform(hashlib.sha256(source).hexdigest(), source, "CMYK")
    if transform is None and source is not DEFAULT_CMYK:  # a broken profile: the default instead
        transform = _transform(hashlib.sha256(DEFAULT_CMYK).hexdigest(), DEFAULT_CMYK, "CMYK")
    assert transform is not None  # the bundled profile is readable
    rgb = np.asarray(ImageCms.applyTransform(image, transform))
    bgr: Pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    return bgr


@functools.lru_cache(maxsize=TRANSFORMS)
def _transform(digest: str, profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The profile's transform to sRGB, or None when it is sRGB in effect or unreadable.

    Keyed by ``digest`` for the LRU; ``profile`` rides along (equal digests, equal bytes).
    """
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        if mode == "RGB" and source.profile.xcolor_space.strip() != "RGB":
            return None  # a grey or CMYK profile on a colour image: not one we can apply
        if mode == "L" and source.profile.xcolor_space.strip() != "GRAY":
            return None
        if mode == "CMYK" and source.profile.xcolor_space.strip() != "CMYK":
            return None
        transform = ImageCms.buildTransform(
            source, _SRGB, mode, "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as error:
        log.warning("ignoring an unreadable ICC profile %s: %s", digest[:12], error)
        return None
    if mode == "RGB" and _is_srgb(transform):
        return None
    return transform


def _is_srgb(transform: ImageCms.ImageCmsTransform) -> bool:
    """Whether the transform moves no probe colour by more than a rounding step."""
    probe = PILImage.fromarray(_PROBE.reshape(1, -1, 3))
    converted = np.asarray(ImageCms.applyTransform(probe, transform)).reshape(-1, 3)
    return bool(np.abs(converted.astype(int) - _PROBE.astype(int)).max() <= 1)

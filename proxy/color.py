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

Most embedded RGB profiles are matrix-shapers (icc.py). For those the conversion runs as
OpenCV table look-ups and a matrix product, once LittleCMS has agreed with it within one
level on a grid of colours: 1.2 against 5.5 ms on a 400x267 image (bench/color.py's
machine), and 16-bit samples are linearised from all 16 bits instead of being rounded to
8 first. LittleCMS stays the reference and does every other profile.
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

from .icc import Curve, MatrixShaper, matrix_shaper

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
    """``image`` (8 or 16-bit gray, BGR or BGRA, as OpenCV decodes) from ``profile`` to 8-bit sRGB.

    Returns the image untouched, whatever its depth, when there is nothing to convert.
    """
    if not profile:
        return image
    gray = image.ndim == 2
    digest = hashlib.sha256(profile).hexdigest()
    transform = _transform(digest, profile, "L" if gray else "RGB")
    if transform is None:
        return image
    shaper = None if gray else _shaper(digest, profile)
    if shaper is not None:
        return shaper.apply(image)
    if image.dtype == np.uint16:
        image = cv2.convertScaleAbs(image, alpha=255 / 65535)
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


def converts(profile: bytes | None, gray: bool = False) -> bool:
    """Whether ``to_srgb`` would change pixels in ``profile`` (so that a decoder should keep
    all of their precision for it)."""
    if not profile:
        return False
    return _transform(hashlib.sha256(profile).hexdigest(), profile, "L" if gray else "RGB") is not None


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


class _Shaper:
    """A matrix-shaper profile -> sRGB as look-up tables and a matrix, in OpenCV's BGR order."""

    STEPS = 16384  # linear-light steps of the output table: 5 per 8-bit level at the darkest

    def __init__(self, curves: tuple[Curve, Curve, Curve], matrix: npt.NDArray[np.float64]) -> None:
        codes = np.linspace(0.0, 1.0, 65536)
        self.linear16 = np.stack([curve(codes) for curve in reversed(curves)], axis=-1).astype(np.float32)
        self.linear8 = np.ascontiguousarray(self.linear16[::257].reshape(1, 256, 3))
        to_srgb = np.linalg.inv(_SRGB_SHAPER.matrix) @ matrix
        # RGB -> RGB becomes BGR -> BGR; the product lands on the output table's steps, plus 0.5 so
        # that truncating to an index rounds.
        scaled = to_srgb[::-1, ::-1] * (self.STEPS - 1)
        self.matrix = np.hstack((scaled, np.full((3, 1), 0.5))).astype(np.float32)
        linear = _SRGB_SHAPER.curves[0](codes)  # sRGB's curve, inverted by interpolation
        encoded = np.interp(np.linspace(0.0, 1.0, self.STEPS), linear, codes)
        self.encode = np.round(encoded * 255).astype(np.uint8)

    def apply(self, image: Pixels) -> Pixels:
        colour = image[..., :3]
        if colour.dtype == np.uint8:
            linear = cv2.LUT(colour, self.linear8)
        else:
            linear = self.linear16[colour, np.arange(3)]
        steps = np.clip(cv2.transform(linear, self.matrix), 0, self.STEPS - 1).astype(np.uint16)
        result: Pixels = np.take(self.encode, steps)
        if image.shape[2] == 4:
            alpha = image[..., 3]
            result = np.dstack((result, alpha if alpha.dtype == np.uint8 else alpha >> 8))
        return result


def _output_model() -> MatrixShaper:
    model = matrix_shaper(_SRGB.tobytes())
    assert model is not None  # the bundled output profile is a matrix-shaper
    return model


_SRGB_SHAPER = _output_model()


@functools.lru_cache(maxsize=TRANSFORMS)
def _shaper(digest: str, profile: bytes) -> _Shaper | None:
    """The fast path for ``profile``, if it is a matrix-shaper LittleCMS agrees with (within 1)."""
    model = matrix_shaper(profile)
    transform = _transform(digest, profile, "RGB")
    if model is None or transform is None:
        return None
    shaper = _Shaper(model.curves, model.matrix)
    grid = np.stack(np.meshgrid(*[np.arange(0, 256, 15, dtype=np.uint8)] * 3, indexing="ij"), axis=-1)
    grid = grid.reshape(1, -1, 3)
    expected = np.asarray(ImageCms.applyTransform(PILImage.fromarray(grid), transform))
    ours = cv2.cvtColor(shaper.apply(cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)), cv2.COLOR_BGR2RGB)
    if np.abs(ours.astype(int) - expected.astype(int)).max() > 1:
        log.info("profile %s: LittleCMS for every image (not a plain matrix-shaper)", digest[:12])
        return None
    return shaper


def _is_srgb(transform: ImageCms.ImageCmsTransform) -> bool:
    """Whether the transform moves no probe colour by more than a rounding step."""
    probe = PILImage.fromarray(_PROBE.reshape(1, -1, 3))
    converted = np.asarray(ImageCms.applyTransform(probe, transform)).reshape(-1, 3)
    return bool(np.abs(converted.astype(int) - _PROBE.astype(int)).max() <= 1)

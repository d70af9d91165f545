"""The steps: each ``(image, plan) -> image``, applied in the order of ``STEPS``.

Resizing comes before rotation, so the rotation is applied to the small image rather than the large
one: until ``orient``, the image is in the stored frame, and the steps before it map the plan (made
in the oriented frame) to it. ``rot=`` and ``flip=`` are part of that one orientation
(geometry.turned). A new edit is a new step, and a place in ``STEPS``.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..color import to_srgb
from ..gravity import window
from .edits import blurred, pixelated, sharpened
from .geometry import RGBA, Geometry, Plan, stored_rect
from .pixels import Image, swap_red_blue, to_8bit_array, with_channels
from .watermark import marked


def cut(image: Image, plan: Plan) -> Image:
    """``rect``: the region of the original, before anything else. ``image`` is the original in its
    stored frame (or an upright copy, orientation 1), possibly reduced: the region is mapped to it."""
    if plan.geometry.region is None:
        return image
    x, y, width, height = stored_rect(plan.geometry.region, plan.source, plan.orientation)
    stored_w, stored_h = plan.source[::-1] if plan.orientation >= 5 else plan.source
    scale_x, scale_y = image.shape[1] / stored_w, image.shape[0] / stored_h
    left, top = round(x * scale_x), round(y * scale_y)
    right = max(round((x + width) * scale_x), left + 1)
    bottom = max(round((y + height) * scale_y), top + 1)
    return image[top:bottom, left:right]


def resize(image: Image, plan: Plan) -> Image:
    width, height = plan.geometry.size
    if plan.orientation >= 5:  # still in the stored frame: the axes are swapped
        width, height = height, width
    if image.shape[1] == width and image.shape[0] == height:
        return image
    # Area averaging to shrink; to enlarge (enlarge=1) it would repeat pixels: bicubic instead.
    shrinking = width <= image.shape[1] and height <= image.shape[0]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def bgr(image: Image, plan: Plan) -> Image:
    """OpenCV's channel order, from the decoder's RGB once the image is small (decode.Decoded)."""
    return swap_red_blue(image) if plan.rgb else image


def orient(image: Image, plan: Plan) -> Image:
    """Apply EXIF orientation, so the pixels are upright and the tag can be dropped."""
    return upright(image, plan.orientation)


_ORIENT: dict[int, Callable[[Image], Image]] = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.transpose(im),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.flip(cv2.transpose(im), -1),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def upright(image: Image, orientation: int) -> Image:
    transform = _ORIENT.get(orientation)
    return transform(image) if transform else image


def crop(image: Image, plan: Plan) -> Image:
    """``cover``: keep the planned window, or the one gravity.py finds for entropy or attention."""
    if plan.geometry.crop is None:
        return image
    x, y, width, height = smart_crop(image, plan.geometry) if plan.geometry.smart else plan.geometry.crop
    return image[y : y + height, x : x + width]


def smart_crop(image: Image, geometry: Geometry) -> tuple[int, int, int, int]:
    assert geometry.crop is not None and geometry.smart is not None
    width, height = geometry.crop[2:]
    x, y = window(to_8bit_array(image), (width, height), geometry.smart)
    return x, y, width, height


def colour(image: Image, plan: Plan) -> Image:
    """Embedded ICC profile -> sRGB (color.py), on the resized and cropped image, before
    16-bit samples are rounded to 8 so that the conversion starts from all their precision."""
    if plan.profile is None:
        return image
    return to_srgb(image if image.dtype == np.uint16 else to_8bit_array(image), plan.profile)


def to_8bit(image: Image, plan: Plan) -> Image:
    return to_8bit_array(image)


def effects(image: Image, plan: Plan) -> Image:
    """``blur``, ``sharpen``, ``pixelate``, in that order, on the 8-bit result (edits.py)."""
    if plan.blur is not None:
        image = blurred(image, plan.blur)
    if plan.sharpen is not None:
        image = sharpened(image, plan.sharpen)
    if plan.pixelate is not None:
        image = pixelated(image, plan.pixelate)
    return image


def watermark(image: Image, plan: Plan) -> Image:
    """``mark`` or ``mark_text`` over the result (watermark.py)."""
    return image if plan.mark is None else marked(image, plan.mark)


def flatten(image: Image, plan: Plan) -> Image:
    """Composite alpha onto the background when the output format cannot carry it."""
    if plan.output.alpha or image.ndim != 3 or image.shape[2] != 4:
        return image
    alpha = image[..., 3:4].astype(np.uint16)
    background = np.array(_bgr(plan.background), np.uint16)
    blended = (image[..., :3] * alpha + background * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def pad(image: Image, plan: Plan) -> Image:
    """``contain``: place the image on a canvas of the background colour, centred or by gravity."""
    if plan.geometry.canvas is None:
        return image
    width, height = plan.geometry.canvas
    r, g, b, a = plan.background
    keep_alpha = plan.output.alpha and (a < 255 or image.ndim == 3 and image.shape[2] == 4)
    fill: tuple[int, ...]
    if keep_alpha:
        channels, fill = 4, (b, g, r, a)
    elif image.ndim == 2 and r == g == b:
        channels, fill = 1, (r,)
    else:
        channels, fill = 3, (b, g, r)
    image = with_channels(image, channels)
    canvas = np.empty((height, width, channels) if channels > 1 else (height, width), np.uint8)
    canvas[...] = fill if channels > 1 else fill[0]
    anchor_x, anchor_y = plan.geometry.anchor
    x, y = int((width - image.shape[1]) * anchor_x), int((height - image.shape[0]) * anchor_y)
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image
    return canvas


def _bgr(rgba: RGBA) -> tuple[int, int, int]:
    return rgba[2], rgba[1], rgba[0]


STEPS: tuple[Callable[[Image, Plan], Image], ...] = (
    cut,
    resize,
    bgr,
    orient,
    crop,
    colour,
    to_8bit,
    effects,
    watermark,
    flatten,
    pad,
)

"""The edits that change pixels rather than geometry: ``trim`` (a uniform border found in the
original's pixels, before the plan) and the effects on the result (``blur``, ``sharpen``,
``pixelate``), each in output pixels, so that a 200 px thumbnail and an 800 px one of the same
URL blur alike to the eye.

Effects run on the 8-bit result after it is cut, resized, turned and cropped, and before alpha is
flattened or the canvas padded: a padded border stays sharp and of the background colour. Where
the image has alpha, blurring and pixelating average premultiplied colour, so that the colour of
transparent pixels (often black) does not bleed into the visible ones as a dark fringe.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from .geometry import stored_rect
from .pixels import Image

WIDE = 10.0  # sigma beyond which a blur runs on a reduced image: the same look, at a fraction of the cost
_INVERSE = {6: 8, 8: 6}  # every other orientation is its own inverse


def trimmed(
    image: Image,
    orientation: int,
    size: tuple[int, int],
    rect: tuple[int, int, int, int] | None,
    threshold: int,
) -> tuple[int, int, int, int] | None:
    """The part of the oriented image (``size``, or its ``rect``) left when its border is cut: the
    smallest rectangle holding every pixel that differs from the top-left one by more than
    ``threshold`` (0..255) in any channel, alpha included. None when nothing differs (a uniform
    image is left whole). ``image`` is the whole original in its stored frame."""
    x, y, width, height = rect or (0, 0, *size)
    sx, sy, sw, sh = stored_rect((x, y, width, height), size, orientation)
    part = image[sy : sy + sh, sx : sx + sw]
    corner_x, corner_y = stored_rect((0, 0, 1, 1), (width, height), orientation)[:2]  # the viewer's top-left
    corner = np.atleast_1d(part[corner_y, corner_x]).astype(np.float64)
    tolerance = threshold * (257 if part.dtype == np.uint16 else 1 / 255 if part.dtype.kind == "f" else 1)
    # 255 where every channel is within the tolerance (border), in one pass; the bounding box of
    # the rest in another (OpenCV's, on the mask: NumPy's reductions over 24 MP took a second).
    kept = cv2.bitwise_not(cv2.inRange(part, corner - tolerance, corner + tolerance))
    left, top, kept_w, kept_h = cv2.boundingRect(kept)
    if kept_w == 0:
        return None
    left, top, kept_w, kept_h = stored_rect(
        (left, top, kept_w, kept_h), (sw, sh), _INVERSE.get(orientation, orientation)
    )
    return (x + left, y + top, kept_w, kept_h)


def blurred(image: Image, sigma: float) -> Image:
    """A Gaussian blur of ``sigma`` pixels. A wide one is made on an image reduced so that its
    sigma is WIDE/2, then enlarged back: the kernel's cost grows with sigma, this one's does not."""
    if sigma <= WIDE:
        return _premultiplied(image, lambda work: cv2.GaussianBlur(work, (0, 0), sigma))
    height, width = image.shape[:2]
    factor = sigma / (WIDE / 2)
    small = (max(1, round(width / factor)), max(1, round(height / factor)))

    def blur(work: np.ndarray) -> np.ndarray:
        reduced = cv2.resize(work, small, interpolation=cv2.INTER_AREA)
        reduced = cv2.GaussianBlur(reduced, (0, 0), sigma * small[0] / width)
        return cv2.resize(reduced, (width, height), interpolation=cv2.INTER_LINEAR)

    return _premultiplied(image, blur)


def sharpened(image: Image, sigma: float) -> Image:
    """An unsharp mask: the image plus its difference from its own blur of ``sigma`` (amount 1).
    Alpha is left as it is."""
    colour = image[..., :3] if image.ndim == 3 and image.shape[2] == 4 else image
    work = colour.astype(np.float32)
    sharp = cv2.addWeighted(work, 2.0, cv2.GaussianBlur(work, (0, 0), sigma), -1.0, 0.0)
    result = np.clip(np.rint(sharp), 0, 255).astype(np.uint8)
    if colour is image:
        return result
    return np.dstack((result, image[..., 3]))


def pixelated(image: Image, block: int) -> Image:
    """``block`` x ``block`` squares from the top-left corner, each the mean of the pixels it
    covers (the last row and column of squares may be cut by the edge)."""
    height, width = image.shape[:2]
    across, down = math.ceil(width / block), math.ceil(height / block)

    def pixelate(work: np.ndarray) -> np.ndarray:
        # Edge pixels repeated out to whole squares, then each square averaged exactly (INTER_AREA
        # by a whole factor) and drawn back at its size.
        whole = cv2.copyMakeBorder(
            work, 0, down * block - height, 0, across * block - width, cv2.BORDER_REPLICATE
        )
        means = cv2.resize(whole, (across, down), interpolation=cv2.INTER_AREA)
        return cv2.resize(means, (across * block, down * block), interpolation=cv2.INTER_NEAREST)[
            :height, :width
        ]

    return _premultiplied(image, pixelate)


def _premultiplied(image: Image, operation: Callable[[np.ndarray], np.ndarray]) -> Image:
    """``operation`` on float32 pixels, colour premultiplied by alpha where there is alpha."""
    work = image.astype(np.float32)
    alpha = image.ndim == 3 and image.shape[2] == 4
    if alpha:
        work[..., :3] *= work[..., 3:4] / 255.0
    work = operation(work)
    if alpha:
        opacity = work[..., 3:4]
        visible = opacity > 0.5
        work[..., :3] = np.where(visible, work[..., :3] * 255.0 / np.maximum(opacity, 1e-3), 0.0)
    return np.clip(np.rint(work), 0, 255).astype(np.uint8)

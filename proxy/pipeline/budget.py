"""``maxbytes``: the answer within a byte budget, its quality lowered first, then its size.

A lossy still is encoded at the quality asked; over the budget, the highest quality down to
``FLOOR`` that fits is searched (a bisection: at most about six encodes). When even ``FLOOR`` is
over, the pixels are reduced by the square root of what is too much (area averaging), at most
``SHRINKS`` times and never below ``SMALLEST`` pixels a side, and the quality is searched again at
that size. PNG, lossless, only shrinks. An animation has its quality lowered, and is not resized:
its frames' layout is its own. What cannot fit within those bounds is a 422 naming ``maxbytes``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2

from ..errors import OverBudget
from ..formats import Format
from ..limits import Limits
from .encode import encode
from .pixels import Image

FLOOR = 30  # the lowest quality a budget may take a lossy answer to
SHRINKS = 4  # reductions tried, each to what the budget allows, after the quality floor
SMALLEST = 16  # pixels: no side is reduced below this


def within(image: Image, output: Format, quality: int, budget: int, limits: Limits) -> bytes:
    """``image`` encoded as ``output`` in at most ``budget`` bytes: the highest quality up to
    ``quality`` that fits, at the largest size that fits; OverBudget when nothing does."""
    effort = limits.webp_effort

    def at(pixels: Image, q: int) -> bytes:
        limits.check_deadline()
        return encode(pixels, output, q, effort)

    data = at(image, quality)
    if len(data) <= budget:
        return data
    for _ in range(SHRINKS + 1):
        if output.lossy:
            fitting = highest(lambda q: at(image, q), FLOOR, quality, budget)  # noqa: B023
            if fitting is not None:
                return fitting
            data = at(image, FLOOR)
        height, width = image.shape[:2]
        factor = min(0.9, math.sqrt(budget / len(data)) * 0.95)
        size = (round(width * factor), round(height * factor))
        if min(size) < SMALLEST:
            break
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        data = at(image, quality)
        if len(data) <= budget:
            return data
    raise OverBudget(f"maxbytes: no {output.name} of this image fits in {budget} bytes")


def highest(encoded: Callable[[int], bytes], low: int, high: int, budget: int) -> bytes | None:
    """The bytes at the highest quality within ``low``..``high`` that fit ``budget`` (sizes grow
    with quality), or None when even ``low`` does not."""
    best = None
    while low <= high:
        middle = (low + high) // 2
        data = encoded(middle)
        if len(data) <= budget:
            best, low = data, middle + 1
        else:
            high = middle - 1
    return best

"""Watermarks: an image (``mark=<id>``, an original of the same sources) or a line of text
(``mark_text=``) drawn over the result, after the effects and before alpha is flattened or the
canvas padded, so a padded border stays clean and a JPEG gets the mark over its background.

A mark is sized to a fraction of the result's width (``mark_scale``), never beyond the result,
and placed at a compass point ``mark_pad`` pixels from the edges, or repeated over the whole
result (``tile``) with ``mark_pad`` pixels between copies. Its own alpha is kept, times
``mark_alpha``. Text is drawn once per string and worker (``text_mark``), in white with a dark
outline, which reads on light and dark pictures alike, in the DejaVu Sans Bold shipped in
proxy/data (its licence beside it).
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from .geometry import ANCHORS, Mark
from .pixels import Image, with_channels

FONT = Path(__file__).resolve().parents[1] / "data" / "DejaVuSans-Bold.ttf"
TEXT_SIZE = 96  # pixels: text is drawn this high, then scaled like an image mark
OUTLINE = 4  # pixels of dark outline around the letters, at TEXT_SIZE


@functools.lru_cache(maxsize=64)
def text_mark(text: str) -> Image:
    """``text`` drawn on a transparent canvas just large enough for it (BGRA)."""
    font = ImageFont.truetype(str(FONT), TEXT_SIZE)
    left, top, right, bottom = (int(round(edge)) for edge in font.getbbox(text, stroke_width=OUTLINE))
    canvas = PILImage.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text(
        (-left, -top),
        text,
        font=font,
        fill=(255, 255, 255, 255),
        stroke_width=OUTLINE,
        stroke_fill=(0, 0, 0, 255),
    )
    pixels = cv2.cvtColor(np.asarray(canvas), cv2.COLOR_RGBA2BGRA)
    pixels.setflags(write=False)  # shared by every render of this worker
    return pixels


def marked(image: Image, mark: Mark) -> Image:
    """``image`` (8-bit) with ``mark`` drawn over it."""
    height, width = image.shape[:2]
    source_h, source_w = mark.image.shape[:2]
    mark_w = max(1, round(width * mark.scale))
    mark_h = max(1, round(source_h * mark_w / source_w))
    if mark_h > height:  # a tall mark on a wide result: as high as the result, not beyond
        mark_w, mark_h = max(1, round(source_w * height / source_h)), height
    # Resized premultiplied, so that the colour of its transparent pixels (often black) does not
    # fringe the edges of what shows; clipped, as bicubic overshoots.
    premultiplied = mark.image.astype(np.float32)
    premultiplied[..., :3] *= premultiplied[..., 3:4] / 255.0
    shrinking = mark_w <= source_w
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    sized = np.clip(cv2.resize(premultiplied, (mark_w, mark_h), interpolation=interpolation), 0.0, 255.0)
    opacity = sized[..., 3:4] * (mark.opacity / 255.0)
    colour = np.minimum(sized[..., :3], sized[..., 3:4]) * mark.opacity  # premultiplied, at the opacity
    result = with_channels(image, 4 if image.ndim == 3 and image.shape[2] == 4 else 3).copy()
    for x, y in _places(mark, (width, height), (mark_w, mark_h)):
        w, h = min(mark_w, width - x), min(mark_h, height - y)
        if w <= 0 or h <= 0:
            continue
        _over(result[y : y + h, x : x + w], colour[:h, :w], opacity[:h, :w])
    return result


def _places(mark: Mark, size: tuple[int, int], mark_size: tuple[int, int]) -> list[tuple[int, int]]:
    """The top-left corners the mark is drawn at."""
    (width, height), (mark_w, mark_h), pad = size, mark_size, mark.pad
    if mark.place == "tile":
        return [(x, y) for y in range(0, height, mark_h + pad) for x in range(0, width, mark_w + pad)]
    anchor_x, anchor_y = ANCHORS.get(mark.place, (0.5, 0.5))
    x = pad + (width - 2 * pad - mark_w) * anchor_x
    y = pad + (height - 2 * pad - mark_h) * anchor_y
    return [(max(0, round(x)), max(0, round(y)))]


def _over(under: np.ndarray, colour: np.ndarray, opacity: np.ndarray) -> None:
    """Porter-Duff "over", in place: premultiplied ``colour`` of ``opacity`` (0..1) on ``under``."""
    if under.shape[2] == 3:
        under[...] = np.rint(colour + under * (1.0 - opacity)).astype(np.uint8)
        return
    below = under[..., 3:4].astype(np.float32) / 255.0
    alpha = opacity + below * (1.0 - opacity)
    blended = (colour + under[..., :3] * below * (1.0 - opacity)) / np.maximum(alpha, 1e-6)
    under[..., :3] = np.rint(np.where(alpha > 0, blended, 0)).astype(np.uint8)
    under[..., 3:4] = np.rint(alpha * 255.0).astype(np.uint8)

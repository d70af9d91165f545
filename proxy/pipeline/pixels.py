"""The array type the pipeline passes around, and the channel helpers decoders, steps and encoders share."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from ..errors import UnsupportedImage

Image = npt.NDArray[np.integer[Any] | np.floating[Any]]


def has_alpha(image: Image) -> bool:
    """A fourth channel that is not fully opaque."""
    if image.ndim != 3 or image.shape[2] != 4:
        return False
    opaque = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}.get(image.dtype, 1.0)
    return bool(image[..., 3].min() < opaque)


def swap_red_blue(image: Image) -> Image:
    """BGR(A) <-> RGB(A): OpenCV's order, which the steps use, and imagecodecs'; grey stays grey."""
    if image.ndim == 2:
        return image
    converted: Image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return converted


def with_channels(image: Image, channels: int) -> Image:
    """Grey, BGR or BGRA as ``channels`` (1, 3 or 4) asks."""
    current = 1 if image.ndim == 2 else image.shape[2]
    if current == channels:
        return image
    code = {
        (1, 3): cv2.COLOR_GRAY2BGR,
        (1, 4): cv2.COLOR_GRAY2BGRA,
        (3, 4): cv2.COLOR_BGR2BGRA,
        (4, 3): cv2.COLOR_BGRA2BGR,
    }[current, channels]
    return cv2.cvtColor(image, code)


def to_8bit_array(image: Image) -> Image:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        converted: Image = cv2.convertScaleAbs(image, alpha=255 / 65535)  # rounds; >> 8 truncates
        return converted
    if image.dtype.kind == "f":  # float TIFF: 0..1 nominal range
        scaled: Image = np.clip(image.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return scaled
    raise UnsupportedImage(f"unsupported sample type {image.dtype}")

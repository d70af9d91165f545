"""Placeholders a page paints while the image loads: a BlurHash and a ThumbHash of a thumbnail.

Both are written here from their published descriptions, over NumPy (one matrix product per
channel, where the reference encoders loop per pixel and component: under a millisecond for a
64 px thumbnail); the tests decode them with the reference decoders' arithmetic.

- **BlurHash** (Wolt, ``Algorithm.md`` and its reference Swift encoder): a DCT of the image in
  linear light, ``x`` by ``y`` components (4 by 3 here), the DC as an sRGB colour and the AC
  terms quantised against their largest magnitude, in base 83. It has no alpha: transparent
  pixels are composited on white first (the origin's default ``bg``).
- **ThumbHash** (Evan Wallace): a DCT of luminance, two chroma channels and alpha, at most
  7 components across the longer side; it keeps the aspect ratio and alpha. Its bytes are given
  as standard base64, padded, as the reference demo prints them; ``atob`` gives them back.
"""

from __future__ import annotations

import base64
import math

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
BLURHASH_COMPONENTS = (4, 3)  # across, down: Wolt's default
THUMBHASH_MAX = 100  # pixels on a side: the reference encoder's bound (more adds nothing)


def srgb_to_linear(values: Floats) -> Floats:
    """sRGB samples in 0..1 -> linear light (the sRGB transfer function, exactly)."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values: Floats) -> Floats:
    v = np.clip(values, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def blurhash(rgb: npt.NDArray[np.uint8], components: tuple[int, int] = BLURHASH_COMPONENTS) -> str:
    """The BlurHash of ``rgb`` (height x width x 3, sRGB, 8-bit)."""
    across, down = components
    height, width = rgb.shape[:2]
    linear = srgb_to_linear(rgb.astype(np.float64) / 255)
    cos_x = np.cos(np.pi * np.outer(np.arange(across), np.arange(width)) / width)  # no half-pixel shift
    cos_y = np.cos(np.pi * np.outer(np.arange(down), np.arange(height)) / height)
    # factors[j, i] = mean over pixels of cos_y[j, y] * cos_x[i, x] * linear[y, x]: y-major, as hashed
    factors = np.einsum("jy,ix,yxc->jic", cos_y, cos_x, linear).reshape(-1, 3) / (width * height)
    factors[1:] *= 2  # every AC term is normalised by 2, the DC by 1
    dc, ac = factors[0], factors[1:]
    hashed = _base83(across - 1 + (down - 1) * 9, 1)
    if len(ac):
        quantised = int(max(0, min(82, math.floor(float(np.abs(ac).max()) * 166 - 0.5))))
        maximum = (quantised + 1) / 166
    else:
        quantised, maximum = 0, 1.0
    hashed += _base83(quantised, 1)
    red, green, blue = (int(value * 255 + 0.5) for value in linear_to_srgb(dc))  # truncated, as the reference
    hashed += _base83((red << 16) + (green << 8) + blue, 4)
    scaled = ac / maximum
    levels = np.clip(np.floor(np.sign(scaled) * np.sqrt(np.abs(scaled)) * 9 + 9.5), 0, 18).astype(int)
    return hashed + "".join(_base83(int(r) * 361 + int(g) * 19 + int(b), 2) for r, g, b in levels)


def _base83(value: int, length: int) -> str:
    return "".join(BASE83[value // 83 ** (length - 1 - i) % 83] for i in range(length))


def thumbhash(rgba: npt.NDArray[np.uint8]) -> str:
    """The ThumbHash of ``rgba`` (height x width x 4, sRGB, 8-bit, not premultiplied; at most
    100 px on a side), in base64."""
    height, width = rgba.shape[:2]
    if width > THUMBHASH_MAX or height > THUMBHASH_MAX:
        raise ValueError(f"{width}x{height} is over ThumbHash's {THUMBHASH_MAX}x{THUMBHASH_MAX}")
    pixels = rgba.reshape(-1, 4).astype(np.float64) / 255
    alpha = pixels[:, 3]
    total = float(alpha.sum())
    average = (pixels[:, :3] * alpha[:, None]).sum(axis=0) / total if total > 0 else np.zeros(3)
    has_alpha = total < width * height
    most = 5 if has_alpha else 7  # fewer luminance terms when alpha needs the room
    lx = max(1, _round(most * width / max(width, height)))
    ly = max(1, _round(most * height / max(width, height)))
    # Composited over the average colour, then luminance, yellow-blue and red-green.
    red, green, blue = (average * (1 - alpha[:, None]) + alpha[:, None] * pixels[:, :3]).T
    luminance = (red + green + blue) / 3
    yellow_blue = (red + green) / 2 - blue
    red_green = red - green

    def channel(values: Floats, nx: int, ny: int) -> tuple[float, list[float], float]:
        terms = _dct(values.reshape(height, width), nx, ny)
        dc, ac = float(terms[0]), terms[1:]
        scale = float(np.abs(ac).max()) if len(ac) else 0.0
        if scale > 0:
            ac = 0.5 + 0.5 / scale * ac
        return dc, [float(f) for f in ac], scale

    l_dc, l_ac, l_scale = channel(luminance, max(3, lx), max(3, ly))
    p_dc, p_ac, p_scale = channel(yellow_blue, 3, 3)
    q_dc, q_ac, q_scale = channel(red_green, 3, 3)
    header24 = (
        _round(63 * l_dc)
        | _round(31.5 + 31.5 * p_dc) << 6
        | _round(31.5 + 31.5 * q_dc) << 12
        | _round(31 * l_scale) << 18
        | int(has_alpha) << 23
    )
    landscape = width > height
    header16 = (ly if landscape else lx) | _round(63 * p_scale) << 3 | _round(63 * q_scale) << 9
    header16 |= int(landscape) << 15
    hashed = bytearray([header24 & 255, header24 >> 8 & 255, header24 >> 16, header16 & 255, header16 >> 8])
    factors = l_ac + p_ac + q_ac
    if has_alpha:
        a_dc, a_ac, a_scale = channel(alpha, 5, 5)
        hashed.append(_round(15 * a_dc) | _round(15 * a_scale) << 4)
        factors += a_ac
    nibbles = [_round(15 * f) for f in factors] + [0] * (len(factors) % 2)
    hashed += bytes(low | high << 4 for low, high in zip(nibbles[::2], nibbles[1::2], strict=True))
    return base64.b64encode(bytes(hashed)).decode()


def _dct(values: Floats, nx: int, ny: int) -> Floats:
    """ThumbHash's terms of ``values`` (height x width): for each row ``cy`` of ``ny``, the
    columns ``cx`` with ``cx * ny < nx * (ny - cy)`` (a triangle), sampled at pixel centres."""
    height, width = values.shape
    wanted = [(cx, cy) for cy in range(ny) for cx in range(nx) if cx * ny < nx * (ny - cy)]
    cos_x = np.cos(np.pi / width * np.outer([cx for cx, _ in wanted], np.arange(width) + 0.5))
    cos_y = np.cos(np.pi / height * np.outer([cy for _, cy in wanted], np.arange(height) + 0.5))
    terms: Floats = np.einsum("ky,yx,kx->k", cos_y, values, cos_x) / (width * height)
    return terms


def _round(value: float) -> int:
    """JavaScript's Math.round, which the reference rounds with (halves up), for values >= 0."""
    return math.floor(value + 0.5)

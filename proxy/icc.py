"""The matrix-shaper model of an RGB ICC profile: three tone curves and a 3x3 matrix.

Nearly every RGB profile a camera or phone embeds (Display P3, Adobe RGB, ProPhoto,
Rec.2020, sRGB) is this model: linear light is each channel through its curve, and
the matrix maps linear light to the profile connection space (XYZ, D50). Reading
those tags lets color.py convert with two table look-ups and one matrix product in
OpenCV, about 4x cheaper than LittleCMS's general 8-bit path and with 16-bit input
kept at 16 bits. color.py checks the result against LittleCMS before trusting it;
anything else (LUT-based profiles, curves we do not read) stays with LittleCMS.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Curve = Callable[[Floats], Floats]

# Tags whose presence means LittleCMS would not use the matrix and curves for our intent.
_LUT_TAGS = (b"A2B0", b"A2B1", b"A2B2", b"B2A0", b"B2A1", b"B2A2", b"D2B0")
# Parameters of each parametric curve type (ICC.1 10.18): g, a, b, c, d, e, f.
_PARAMETERS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


@dataclass(frozen=True)
class MatrixShaper:
    """``curves`` (encoded 0..1 -> linear) per R, G, B, and ``matrix`` (linear RGB -> XYZ D50)."""

    curves: tuple[Curve, Curve, Curve]
    matrix: Floats


def matrix_shaper(profile: bytes) -> MatrixShaper | None:
    """The profile's curves and matrix, or None when it is not a plain RGB matrix-shaper."""
    try:
        if profile[16:20] != b"RGB " or profile[20:24] != b"XYZ ":
            return None
        (count,) = struct.unpack_from(">I", profile, 128)
        tags = {}
        for index in range(min(count, 200)):
            signature, offset, size = struct.unpack_from(">4sII", profile, 132 + 12 * index)
            tags[signature] = profile[offset : offset + size]
        if any(tag in tags for tag in _LUT_TAGS):
            return None
        columns = [_xyz(tags[name]) for name in (b"rXYZ", b"gXYZ", b"bXYZ")]
        red, green, blue = (_curve(tags[name]) for name in (b"rTRC", b"gTRC", b"bTRC"))
    except (KeyError, struct.error, ValueError):
        return None
    if red is None or green is None or blue is None:
        return None
    return MatrixShaper((red, green, blue), np.array(columns, np.float64).T)


def _xyz(tag: bytes) -> list[float]:
    if tag[:4] != b"XYZ ":
        raise ValueError("not an XYZ tag")
    return [value / 65536 for value in struct.unpack_from(">3i", tag, 8)]


def _curve(tag: bytes) -> Curve | None:
    """A function mapping encoded values (0..1) to linear light, or None for a kind we skip."""
    if tag[:4] == b"curv":
        (count,) = struct.unpack_from(">I", tag, 8)
        if count == 0:
            return lambda x: x
        if count == 1:
            gamma = struct.unpack_from(">H", tag, 12)[0] / 256
            return lambda x: np.power(x, gamma)
        table = np.array(struct.unpack_from(f">{count}H", tag, 12), np.float64) / 65535
        grid = np.linspace(0.0, 1.0, count)
        return lambda x: np.interp(x, grid, table)
    if tag[:4] == b"para":
        (kind,) = struct.unpack_from(">H", tag, 8)
        if kind not in _PARAMETERS:
            return None
        values = [v / 65536 for v in struct.unpack_from(f">{_PARAMETERS[kind]}i", tag, 12)]
        g, a, b, c, d, e, f = values + [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0][len(values) :]
        if kind == 0:
            return lambda x: np.power(x, g)
        if kind in (1, 2):  # below -b/a the curve is flat at c (0 for type 1)
            d = -b / a if a else 0.0
            return lambda x: np.where(x >= d, np.power(np.maximum(a * x + b, 0), g) + c, c)
        return lambda x: np.where(x >= d, np.power(np.maximum(a * x + b, 0), g) + e, c * x + f)
    return None

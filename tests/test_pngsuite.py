"""PngSuite (tests/data/pngsuite): every valid file renders as its reference decoding, alpha
included, and every deliberately corrupt one (x*.png) is a 415."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from proxy.errors import UnsupportedImage
from proxy.params import ImageParams
from proxy.pipeline import render

from .support.images import decode

SUITE = Path(__file__).parent / "data" / "pngsuite"
VALID = sorted(path.stem for path in SUITE.glob("[!x]*.png"))
CORRUPT = sorted(path.stem for path in SUITE.glob("x*.png"))


def as_rgba(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.dstack((image, image, image, np.full_like(image, 255)))
    if image.shape[2] == 3:
        return np.dstack((image[..., ::-1], np.full(image.shape[:2], 255, image.dtype)))
    return image[..., [2, 1, 0, 3]]


def reference(name: str, width: int, height: int) -> np.ndarray:
    """The suite's decoding, 8 bits per channel (16-bit ones rounded, as our output is 8-bit)."""
    eight = SUITE / "reference" / f"{name}.rgba"
    if eight.exists():
        return np.fromfile(eight, np.uint8).reshape(height, width, 4)
    sixteen = np.fromfile(SUITE / "reference" / f"{name}.rgba16", "<u2").reshape(height, width, 4)
    return np.round(sixteen / 257).astype(np.uint8)


def test_the_suite_is_all_here() -> None:
    assert len(VALID) == 161 and len(CORRUPT) == 14


@pytest.mark.parametrize("name", VALID)
def test_valid_files_match_their_reference(name: str) -> None:
    out = as_rgba(decode(render(str(SUITE / f"{name}.png"), ImageParams(), "png").data)).astype(int)
    expected = reference(name, out.shape[1], out.shape[0]).astype(int)
    difference = np.abs(out - expected)
    difference[expected[..., 3] == 0, :3] = 0  # under full transparency, colour is not defined
    assert difference.max() <= 1


@pytest.mark.parametrize("name", CORRUPT)
def test_corrupt_files_are_unsupported(name: str) -> None:
    with pytest.raises(UnsupportedImage):
        render(str(SUITE / f"{name}.png"), ImageParams(), "png")

"""Writes this folder's HEIC files, which tests/test_heif_jxl.py reads (see README.md here).

pi_heif, which the origin runs, only decodes: these are encoded by pillow-heif (libheif with the
x265 encoder, GPL), run from a throwaway virtualenv so that neither enters the origin's (the
other two packages are what tests/support/images.py imports):

    python3 -m venv /tmp/heifgen
    /tmp/heifgen/bin/pip install pillow-heif opencv-python-headless imagecodecs
    /tmp/heifgen/bin/python tests/data/heif/make.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.support.images import photo, quadrants, vivid  # noqa: E402

P3 = (HERE.parent / "icc" / "DisplayP3-v4.icc").read_bytes()
QUALITY = 90


def rgb(bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))


def main() -> None:
    pillow_heif.register_heif_opener()
    picture = rgb(photo(64, 48))
    picture.save(HERE / "photo.heic", quality=QUALITY)
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    rgba = np.dstack((photo(64, 48)[..., ::-1], ramp))
    Image.fromarray(rgba, "RGBA").save(HERE / "alpha.heic", quality=QUALITY)
    Image.fromarray(vivid(64, 48)).save(HERE / "p3.heic", quality=QUALITY, icc_profile=P3)
    deep = (photo(64, 48)[..., ::-1].astype(np.uint16) * 257).tobytes()
    pillow_heif.from_bytes("RGB;16", (64, 48), deep).save(HERE / "deep.heic", quality=QUALITY)
    # libheif writes the turn an EXIF orientation asks for as irot/imir, and keeps the EXIF block:
    # a file as phones write it, whose orientation must be applied once.
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        rgb(quadrants(64, 48)).save(
            HERE / f"orientation-{orientation}.heic", quality=QUALITY, exif=exif.tobytes()
        )
    several = pillow_heif.from_pillow(rgb(photo(32, 24, seed=5)))
    several.add_from_pillow(picture)
    several.save(HERE / "several.heic", quality=QUALITY, primary_index=1)


if __name__ == "__main__":
    main()

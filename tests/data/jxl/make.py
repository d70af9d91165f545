"""Writes this folder's JPEG XL files, which tests/test_heif_jxl.py reads (see README.md here).

imagecodecs encodes JPEG XL too, but tags nothing: neither a colour space other than sRGB nor an
orientation. These come from libjxl's own cjxl (Debian's libjxl-tools), fed PNGs that Pillow tags:

    apt-get install libjxl-tools && .venv/bin/python tests/data/jxl/make.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[2]))

from tests.support.images import quadrants, vivid  # noqa: E402

P3 = (HERE.parent / "icc" / "DisplayP3-v4.icc").read_bytes()


def cjxl(png: Path, name: str, *options: str) -> None:
    subprocess.run(["cjxl", str(png), str(HERE / name), *options], check=True, capture_output=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tagged = Path(scratch) / "p3.png"
        Image.fromarray(vivid(64, 48)).save(tagged, icc_profile=P3)
        cjxl(tagged, "p3.jxl", "-d", "1")  # lossy: XYB, the profile kept as "Display P3" by name
        cjxl(tagged, "p3-lossless.jxl", "-d", "0")  # lossless: the ICC profile itself, embedded
        for orientation in range(1, 9):  # cjxl moves an EXIF orientation into the codestream's
            exif = Image.Exif()
            exif[0x0112] = orientation
            turned = Path(scratch) / f"orientation-{orientation}.png"
            Image.fromarray(np.ascontiguousarray(quadrants(64, 48)[..., ::-1])).save(
                turned, exif=exif.tobytes()
            )
            cjxl(turned, f"orientation-{orientation}.jxl", "-d", "1")


if __name__ == "__main__":
    main()

"""Decoders side by side: where OpenCV's own codec builds are slow, and what replaced them.

    .venv/bin/python bench/codecs.py [--repeat 7]

For each PNG kind of the transform corpus (and its WebP), the median time to decode the whole
file to pixels with OpenCV (``imread``, as the pipeline did), with imagecodecs (libpng built
with zlib-ng; the pipeline's choice for colour PNGs, 16-bit ones kept at 16 bits, against
OpenCV's decode to 8 bits that it replaced), and with libvips (a full decode into memory),
interleaved in one run. For WebP, the scaled decodes for a 400 px result are shown
too: libvips' (``thumbnail``, which asks libwebp to scale) and ours (proxy/libwebp.py, libwebp
scaling by the whole factor the pipeline picks, 3 here), against OpenCV's whole decode with the
area-averaging resize it needed after.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transform import corpus, interleaved  # noqa: E402

from proxy.params import ImageParams  # noqa: E402
from proxy.pipeline import decode, plan_geometry, shrink_factor  # noqa: E402
from proxy.probe import probe  # noqa: E402


def whole_then_resized(path: Path, size: tuple[int, int]) -> object:
    return cv2.resize(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), size, interpolation=cv2.INTER_AREA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    pyvips.cache_set_max(0)
    with tempfile.TemporaryDirectory() as scratch:
        sources = corpus(Path(scratch), quick=False)
        for name, path in sources.items():
            if not name.startswith(("png", "webp")):
                continue
            data = path.read_bytes()
            calls: dict[str, Callable[[], object]] = {
                "opencv": lambda: cv2.imread(str(path), cv2.IMREAD_UNCHANGED),  # noqa: B023
                "vips": lambda: pyvips.Image.new_from_file(str(path), access="sequential").write_to_memory(),  # noqa: B023
            }
            if name.startswith("png"):
                calls["imagecodecs"] = lambda: imagecodecs.png_decode(data)  # noqa: B023
                calls["opencv to 8 bits"] = lambda: cv2.imread(str(path), cv2.IMREAD_COLOR)  # noqa: B023
            else:
                calls["imagecodecs"] = lambda: imagecodecs.webp_decode(data)  # noqa: B023
                calls["vips scaled to 400"] = lambda: pyvips.Image.thumbnail(str(path), 400).write_to_memory()  # noqa: B023
                info = probe(str(path))
                factor = shrink_factor(
                    info,
                    (info.width, info.height),
                    plan_geometry(info.width, info.height, ImageParams(width=400)),
                )
                calls[f"ours scaled 1/{factor}"] = functools.partial(decode, str(path), info, factor)
                calls["opencv + resize to 400"] = functools.partial(whole_then_resized, path, (400, 267))
            figures = {
                label: round(seconds * 1000, 1)
                for label, (seconds, _) in interleaved(calls, args.repeat).items()
            }
            same = ""
            if name.startswith("png rgba"):
                ours = cv2.cvtColor(imagecodecs.png_decode(data), cv2.COLOR_RGBA2BGRA)
                same = f", same pixels: {np.array_equal(ours, cv2.imread(str(path), cv2.IMREAD_UNCHANGED))}"
            print(f"{name:24} " + ", ".join(f"{label} {ms} ms" for label, ms in figures.items()) + same)


if __name__ == "__main__":
    main()

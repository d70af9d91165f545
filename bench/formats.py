"""What each output format costs to encode, and weighs, at 400 and 1600 px: the numbers behind
fmt=auto's order (PROXY_AUTO_FORMATS).

    .venv/bin/python bench/formats.py [--repeat 5]

The image is the photographic corpus of bench/transform.py, resized once per width; each format
is encoded by the pipeline's own encode() with the default quality, alternating, medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from transform import photographic  # noqa: E402

from proxy.formats import FORMATS  # noqa: E402
from proxy.params import DEFAULT_QUALITY  # noqa: E402
from proxy.pipeline import encode  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    photo = photographic(6000, 4000)
    print("width  format  encode ms  bytes")
    for width in (400, 1600):
        image = cv2.resize(photo, (width, round(width * 2 / 3)), interpolation=cv2.INTER_AREA)
        times: dict[str, list[float]] = {name: [] for name in FORMATS}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):
            for name, fmt in FORMATS.items():
                started = time.perf_counter()
                sizes[name] = len(encode(image, fmt, DEFAULT_QUALITY))
                times[name].append(time.perf_counter() - started)
        for name in FORMATS:
            print(f"{width:>5}  {name:<6}  {statistics.median(times[name]) * 1000:9.1f}  {sizes[name]:>7}")


if __name__ == "__main__":
    main()

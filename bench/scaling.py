"""How costs grow: miss latency against source megapixels, hits against cache size.

    .venv/bin/python bench/scaling.py [--repeat 5]

1. Miss: a JPEG of 1, 6, 12, 24 and 50 MP to a 400 px JPEG, and to a result a third of the
   source's width, ours against pyvips thumbnail. With shrink-on-decode a thumbnail decodes
   1/64 of the pixels, so its cost follows the compressed size; the third-width result
   decodes them all and should grow linearly in pixels.
2. Hit: 3,000 distinct variants requested with a Zipf-like popularity through caches of
   several sizes, reporting the hit rate and the cost of a lookup, which should stay flat.
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from transform import interleaved, photographic, vips  # noqa: E402

from proxy.cache import VariantCache  # noqa: E402
from proxy.formats import FORMATS  # noqa: E402
from proxy.params import ImageParams  # noqa: E402
from proxy.pipeline import Rendered, render  # noqa: E402


def miss_scaling(scratch: Path, repeat: int) -> None:
    print("miss latency against source size (JPEG q90 source, JPEG q82 result)")
    print(f"{'MP':>4} {'source':>11} | {'400 px ours':>11} {'vips':>7}", end="")
    print(f" | {'1/3 ours':>9} {'vips':>7} | {'ns/px 1/3':>9}")
    for megapixels in (1, 6, 12, 24, 50):
        width = int(math.sqrt(megapixels * 1e6 * 3 / 2))
        height = width * 2 // 3
        path = scratch / f"{megapixels}.jpg"
        cv2.imwrite(str(path), photographic(width, height, seed=megapixels), [cv2.IMWRITE_JPEG_QUALITY, 90])
        cells = []
        for target in (400, width // 3):
            params = ImageParams(width=target, quality=82)
            results = interleaved(
                {
                    "ours": lambda p=params, source=str(path): render(source, p, "jpeg").data,
                    "vips": functools.partial(vips, path, target, "jpeg"),
                },
                repeat,
            )
            cells.append((results["ours"][0] * 1000, results["vips"][0] * 1000))
        per_pixel = cells[1][0] * 1e6 / (width * height)
        print(
            f"{megapixels:4} {width:5}x{height:<5} | {cells[0][0]:9.1f}ms {cells[0][1]:5.1f}ms"
            f" | {cells[1][0]:7.1f}ms {cells[1][1]:5.1f}ms | {per_pixel:9.2f}"
        )


def hit_scaling(scratch: Path) -> None:
    print("\nhits against cache size (3,000 variants of 20-60 KB, Zipf-like popularity, 20,000 requests)")
    print(f"{'cache':>7} | {'hit rate':>8} | {'lookup us (median)':>18}")
    rng = random.Random(5)
    sizes = [rng.randrange(20_000, 60_000) for _ in range(3000)]
    weights = [1 / (rank + 1) for rank in range(3000)]
    requests = rng.choices(range(3000), weights, k=20_000)
    for megabytes in (16, 64, 256):
        cache = VariantCache(scratch / f"cache{megabytes}", megabytes << 20, touch_every=60)
        hits, lookups = 0, []
        for index in requests:
            started = time.perf_counter()
            variant = cache.get(f"v{index}")
            lookups.append(time.perf_counter() - started)
            if variant is None:
                cache.put(f"v{index}", Rendered(bytes(sizes[index]), FORMATS["webp"]))
            else:
                hits += 1
                if not isinstance(variant.body, bytes):
                    variant.body.close()
        cache.close()
        print(f"{megabytes:5}MB | {hits / len(requests):8.1%} | {statistics.median(lookups) * 1e6:18.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        miss_scaling(Path(scratch), args.repeat)
        hit_scaling(Path(scratch))


if __name__ == "__main__":
    main()

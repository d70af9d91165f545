"""Where to crop: how often each gravity keeps the subject, and what content-aware crops cost.

    .venv/bin/python bench/crops.py [--scenes 40] [--repeat 9]

Hit rates: the generated scenes of tests/support/images.py (one subject at a random place on a plain or
blurred backdrop), each cropped to a square window a third of its long side; a hit keeps the
subject's centre. Cost: a 24 MP JPEG -> 400x400 cover miss under each gravity, alternating, so
that every one sees the same machine; content-aware ones run on the 600x400 image the crop is
taken from.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from backpressure import camera_like  # noqa: E402

from proxy.params import ImageParams  # noqa: E402
from proxy.pipeline import plan_geometry, render, smart_crop  # noqa: E402
from tests.support.images import subject_scene  # noqa: E402

GRAVITIES = ("center", "entropy", "attention")


def hit_rates(scenes: int) -> dict[str, float]:
    hits = dict.fromkeys(GRAVITIES, 0)
    for seed in range(scenes):
        image, (cx, cy) = subject_scene(seed)
        height, width = image.shape[:2]
        for gravity in GRAVITIES:
            geometry = plan_geometry(
                width, height, ImageParams(width=100, height=100, fit="cover", gravity=gravity)
            )
            resized = cv2.resize(image, geometry.size, interpolation=cv2.INTER_AREA)
            assert geometry.crop is not None
            x, y, w, h = smart_crop(resized, geometry) if geometry.smart else geometry.crop
            scale = geometry.size[0] / width
            hits[gravity] += x <= cx * scale < x + w and y <= cy * scale < y + h
    return {gravity: count / scenes for gravity, count in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    rates = hit_rates(args.scenes)
    print(f"subject kept, {args.scenes} scenes: " + ", ".join(f"{g} {r:.0%}" for g, r in rates.items()))
    path = Path(tempfile.mkdtemp(prefix="bench-crops-")) / "photo.jpg"
    cv2.imwrite(str(path), camera_like(6000, 4000, 5), [cv2.IMWRITE_JPEG_QUALITY, 90])
    times: dict[str, list[float]] = {gravity: [] for gravity in GRAVITIES}
    for _ in range(args.repeat):
        for gravity in GRAVITIES:
            started = time.perf_counter()
            render(str(path), ImageParams(width=400, height=400, fit="cover", gravity=gravity), "jpeg")
            times[gravity].append(time.perf_counter() - started)
    base = statistics.median(times["center"])
    print(f"24 MP JPEG -> 400x400 cover miss, median of {args.repeat}:")
    for gravity in GRAVITIES:
        median = statistics.median(times[gravity])
        print(f"  {gravity:<10} {median * 1000:6.1f} ms  {median / base - 1:+.1%}")
    image = cv2.resize(camera_like(6000, 4000, 5), (600, 400), interpolation=cv2.INTER_AREA)
    geometry = plan_geometry(6000, 4000, ImageParams(width=400, height=400, fit="cover", gravity="attention"))
    for gravity in ("entropy", "attention"):
        search = replace(geometry, smart=gravity)
        alone = []
        for _ in range(50):
            started = time.perf_counter()
            smart_crop(image, search)
            alone.append(time.perf_counter() - started)
        step = statistics.median(alone)
        print(
            f"  the {gravity} search alone (600x400, median of 50): {step * 1000:.2f} ms, {step / base:.1%}"
        )


if __name__ == "__main__":
    main()

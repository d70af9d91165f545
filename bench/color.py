"""The cost of colour management: a Display P3 24 MP JPEG -> 400 px, against the same file untagged.

    .venv/bin/python bench/color.py [--repeat 9]

Both files hold the same pixels; only the embedded profile differs, so the difference is the
profile's conversion (on the 400 px result) and reading it from the header. That difference is
a few milliseconds under a miss's own run-to-run noise, so the conversion is also timed alone,
on the 400 px image the miss converts, and given as a share of the untagged miss.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from backpressure import camera_like  # noqa: E402

from proxy.color import to_srgb  # noqa: E402
from proxy.params import ImageParams  # noqa: E402
from proxy.pipeline import render  # noqa: E402

PROFILE = REPO / "tests" / "data" / "icc" / "DisplayP3-v4.icc"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-color-"))
    pixels = Image.fromarray(cv2.cvtColor(camera_like(6000, 4000, 5), cv2.COLOR_BGR2RGB))
    plain, tagged = scratch / "plain.jpg", scratch / "p3.jpg"
    pixels.save(plain, quality=90)
    pixels.save(tagged, quality=90, icc_profile=PROFILE.read_bytes())
    times: dict[str, list[float]] = {"untagged": [], "Display P3": []}
    for _ in range(args.repeat):  # alternating, so both see the same machine
        for name, path in (("untagged", plain), ("Display P3", tagged)):
            for fmt in ("jpeg", "webp"):
                started = time.perf_counter()
                render(str(path), ImageParams(width=400), fmt)
                times[name].append(time.perf_counter() - started)
    plain_ms = statistics.median(times["untagged"]) * 1000
    tagged_ms = statistics.median(times["Display P3"]) * 1000
    print(f"24 MP JPEG -> 400 px (JPEG and WebP), median of {2 * args.repeat}:")
    print(f"untagged {plain_ms:.1f} ms, Display P3 {tagged_ms:.1f} ms: {tagged_ms / plain_ms - 1:+.1%}")
    small = cv2.resize(cv2.imread(str(plain)), (400, 267), interpolation=cv2.INTER_AREA)
    profile = PROFILE.read_bytes()
    to_srgb(small, profile)  # the transform is built once per profile, not per request
    alone = []
    for _ in range(200):
        started = time.perf_counter()
        to_srgb(small, profile)
        alone.append(time.perf_counter() - started)
    step_ms = statistics.median(alone) * 1000
    share = step_ms / plain_ms
    print(f"the conversion alone (400x267, median of 200): {step_ms:.2f} ms, {share:.1%} of the miss")


if __name__ == "__main__":
    main()

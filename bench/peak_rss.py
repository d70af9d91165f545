"""Peak resident memory of one transform of the largest allowed source (50 MP JPEG).

    .venv/bin/python bench/peak_rss.py [megapixels]

Each case runs in a fresh interpreter and reports VmHWM (peak RSS) next to the baseline
after imports, so the figure is what one worker needs on top of its idle size.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
CASES = [("400", "jpeg"), ("4000", "webp"), ("none", "jpeg"), ("none", "webp"), ("none", "png")]
CHILD = """
import sys, time
from proxy.params import ImageParams
from proxy.pipeline import render
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
base = hwm()
width = None if sys.argv[2] == "none" else int(sys.argv[2])
start = time.perf_counter()
out = render(sys.argv[1], ImageParams(width=width), sys.argv[3])
print(f"{base:.0f} {hwm():.0f} {time.perf_counter() - start:.2f} {len(out.data)}")
"""


def source(megapixels: float, path: Path) -> tuple[int, int]:
    """A deterministic photo-like JPEG: smooth colour fields plus sensor-like noise."""
    width = int(math.sqrt(megapixels * 1e6 * 3 / 2))
    height = int(width * 2 / 3)
    y, x = np.mgrid[0:200, 0:300].astype(np.float32)
    small = np.dstack([128 + 100 * np.sin(x / 40 + k) * np.cos(y / 30 - k) for k in range(3)])
    image = cv2.resize(
        np.clip(small, 0, 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC
    )
    noise = np.zeros_like(image)
    cv2.randn(noise, 0, 4)
    cv2.imwrite(str(path), cv2.add(image, noise), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return width, height


def main() -> None:
    megapixels = float(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "source.jpg"
        width, height = source(megapixels, path)
        frame_mb = width * height * 3 / 2**20
        print(
            f"source {width}x{height} JPEG, {path.stat().st_size / 2**20:.1f} MiB;"
            f" decoded frame {frame_mb:.0f} MiB"
        )
        print(
            f"{'w':>6} {'fmt':>5} {'idle MiB':>9} {'peak MiB':>9}"
            f" {'peak-idle':>10} {'x frame':>8} {'seconds':>8}"
        )
        for width_arg, fmt in CASES:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), width_arg, fmt],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            idle, peak, seconds = float(out[0]), float(out[1]), out[2]
            print(
                f"{width_arg:>6} {fmt:>5} {idle:9.0f} {peak:9.0f}"
                f" {peak - idle:10.0f} {(peak - idle) / frame_mb:8.2f} {seconds:>8}"
            )


if __name__ == "__main__":
    main()

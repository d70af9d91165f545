"""An animated 100-frame GIF -> 240 px animated WebP: ours against pyvips ``thumbnail`` (n=-1).

.venv/bin/python bench/animation.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyvips
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.params import ImageParams  # noqa: E402
from proxy.pipeline import render  # noqa: E402


def moving_gif(frames: int = 100, size: tuple[int, int] = (480, 270)) -> bytes:
    """A ball crossing a gradient: every frame differs, as in a real clip."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.uint8)
    red, blue = np.tile(x, (height, 1)), np.tile(x[::-1], (height, 1))
    background = np.dstack((red, np.full((height, width), 90, np.uint8), blue))
    images = []
    for n in range(frames):
        frame = background.copy()
        cx, cy = int(width * n / frames), height // 2
        yy, xx = np.ogrid[:height, :width]
        frame[(xx - cx) ** 2 + (yy - cy) ** 2 < 900] = (255, 255, 255)
        images.append(Image.fromarray(frame).quantize(64))
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=40, loop=0)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="bench-animation-")) / "clip.gif"
    path.write_bytes(moving_gif())
    ours, vips = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        ours_bytes = render(str(path), ImageParams(width=240, quality=80), "webp").data
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        vips_bytes = pyvips.Image.thumbnail(str(path) + "[n=-1]", 240).webpsave_buffer(Q=80)
        vips.append(time.perf_counter() - started)
    a, b = statistics.median(ours) * 1000, statistics.median(vips) * 1000
    print(f"100-frame 480x270 GIF -> 240 px animated WebP q80, median of {args.repeat}:")
    print(
        f"ours {a:.0f} ms ({len(ours_bytes)} bytes), vips {b:.0f} ms ({len(vips_bytes)} bytes): {a / b:.2f}x"
    )


if __name__ == "__main__":
    main()

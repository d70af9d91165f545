"""What each output format costs to encode, and weighs, at 400 and 1600 px: the numbers behind
fmt=auto's order (PROXY_AUTO_FORMATS).

    .venv/bin/python bench/formats.py [--repeat 5] [--json bench/out/formats.json] [--markdown]

The image is the photographic corpus of bench/transform.py, resized once per width; each format
is encoded by the pipeline's own encode() with the default quality, alternating, medians (and AVIF
by OpenCV's writer too, which the pipeline's colour AVIF replaced: libaom on one thread). Then
JPEG XL at libjxl efforts 3, 5 (ours, formats.JXL_EFFORT) and 7 (libjxl's default), with the
PSNR of each: the figures behind the effort chosen. ``--markdown`` prints docs/performance.md's
table at the end (bench/doc_tables.py prints it again from the JSON).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import imagecodecs
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import doc_tables  # noqa: E402
from transform import photographic  # noqa: E402

from proxy.formats import FORMATS, Format  # noqa: E402
from proxy.params import DEFAULT_QUALITY  # noqa: E402
from proxy.pipeline import encode  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("bench/out/formats.json"))
    parser.add_argument("--markdown", action="store_true", help="print docs/performance.md's table too")
    args = parser.parse_args()
    photo = photographic(6000, 4000)
    rows: list[dict[str, object]] = []
    print("width  format  encode ms    bytes  PSNR")
    for width in (400, 1600):
        image = cv2.resize(photo, (width, round(width * 2 / 3)), interpolation=cv2.INTER_AREA)
        calls = {
            name: functools.partial(encode, image, fmt, DEFAULT_QUALITY) for name, fmt in FORMATS.items()
        }
        if "avif" in FORMATS:  # what the pipeline replaced: OpenCV's writer, libaom on one thread
            calls["avif-cv"] = functools.partial(opencv_encode, image, FORMATS["avif"])
        times: dict[str, list[float]] = {name: [] for name in calls}
        encoded: dict[str, bytes] = {}
        for _ in range(args.repeat):
            for name, call in calls.items():
                started = time.perf_counter()
                encoded[name] = call()
                times[name].append(time.perf_counter() - started)
        for name, data in encoded.items():
            row = {
                "width": width,
                "format": name,
                "ms": statistics.median(times[name]) * 1000,
                "bytes": len(data),
                "psnr": psnr(image, data, name),
            }
            rows.append(row)
            print(f"{width:>5}  {name:<7} {row['ms']:9.1f}  {len(data):>7}  {row['psnr']:.2f} dB")
        if "jxl" in FORMATS:
            rows += jxl_efforts(image, args.repeat)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"formats": rows}, indent=2))  # a lossless PSNR is Infinity
    if args.markdown:
        print("\n" + doc_tables.render({"formats": rows}))


def opencv_encode(image: np.ndarray, fmt: Format) -> bytes:
    return bytes(cv2.imencode(fmt.extension, image, fmt.encoder_flags(DEFAULT_QUALITY))[1])


def psnr(image: np.ndarray, data: bytes, name: str) -> float:
    if name == "jxl":  # RGB, from libjxl; OpenCV's wheels read no JPEG XL
        return float(cv2.PSNR(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), imagecodecs.jpegxl_decode(data)))
    return float(cv2.PSNR(image, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)))


def jxl_efforts(image: np.ndarray, repeat: int) -> list[dict[str, object]]:
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    rows: list[dict[str, object]] = []
    for effort in (3, 5, 7):
        times, data = [], b""
        for _ in range(repeat):
            started = time.perf_counter()
            data = imagecodecs.jpegxl_encode(
                rgb, level=DEFAULT_QUALITY, effort=effort, numthreads=cv2.getNumThreads()
            )
            times.append(time.perf_counter() - started)
        quality = cv2.PSNR(rgb, imagecodecs.jpegxl_decode(data))
        print(
            f"{image.shape[1]:>5}  jxl e{effort}  {statistics.median(times) * 1000:9.1f}  {len(data):>7}"
            f"  {quality:.2f} dB"
        )
        rows.append(
            {
                "width": image.shape[1],
                "format": f"jxl effort {effort}",
                "ms": statistics.median(times) * 1000,
                "bytes": len(data),
                "psnr": float(quality),
            }
        )
    return rows


if __name__ == "__main__":
    main()

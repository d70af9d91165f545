"""Miss latency, in process: our pipeline against the naive one and against libvips.

    .venv/bin/python bench/transform.py [--repeat 7] [--quick] [--json bench/out/transform.json] [--markdown]
                                        [--seen-only | --edits-only]

For every source x size x output of a corpus generated here (deterministically), it times

- ours:  proxy.pipeline.render, exactly what a miss runs;
- naive: the original design: cv2.imread at full size, cv2.resize with its default
         (bilinear) interpolation, cv2.imencode with default flags;
- vips:  pyvips.Image.thumbnail (libvips, what imgproxy and imaginary use), then
         write_to_buffer with the same quality,

and reports the median of ``--repeat`` runs, each ratio against vips measured in the same
run, output bytes, and PSNR against a reference: the full-size decode reduced with an
exact area average in float. Then the edits (rot, blur, trim, watermarks...) of two originals,
each beside the plain resize in the same run. Everything runs on this machine, one case after another, the
implementations of a case taking turns (``interleaved``). ``--markdown`` prints the tables of
docs/performance.md at the end (bench/doc_tables.py prints them again from the JSON).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import cv2
import imagecodecs
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import doc_tables  # noqa: E402
import pyvips  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402

from proxy import pipeline  # noqa: E402
from proxy.cache import VariantCache  # noqa: E402
from proxy.intermediate import render_reduced  # noqa: E402
from proxy.limits import Limits  # noqa: E402
from proxy.params import ImageParams, parse_params  # noqa: E402
from proxy.pipeline import render  # noqa: E402
from proxy.probe import probe  # noqa: E402
from proxy.settings import Settings  # noqa: E402
from tests.support.vectors import sources as vector_sources  # noqa: E402

QUALITY = {"jpeg": 82, "webp": 80, "png": None, "avif": None, "jxl": None}  # None: each one's default
EXTENSION = {"jpeg": ".jpg", "webp": ".webp", "png": ".png", "avif": ".avif", "jxl": ".jxl"}


def photographic(width: int, height: int, seed: int = 1) -> np.ndarray:
    """Smooth colour fields at several scales plus sensor-like noise: compresses like a photo."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 64 + 2, width // 64 + 2, 3), dtype=np.uint8)
    image = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    detail = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    image = cv2.addWeighted(
        image, 0.8, cv2.resize(detail, (width, height), interpolation=cv2.INTER_LINEAR), 0.2, 0
    )
    noise = np.zeros_like(image)
    cv2.randn(noise, 0, 5)
    return cv2.add(image, noise)


def corpus(directory: Path, quick: bool) -> dict[str, Path]:
    big = (3000, 2000) if quick else (6000, 4000)
    mid = (1500, 1000) if quick else (3000, 2000)
    photo = photographic(*big)
    small = cv2.resize(photo, mid, interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0 : mid[1], 0 : mid[0]]
    alpha = np.clip(255 * (1.3 - np.hypot(xx / mid[0] - 0.5, yy / mid[1] - 0.5) * 2.2), 0, 255).astype(
        np.uint8
    )
    files = {
        f"jpeg {big[0]}x{big[1]}": (photo, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]),
        f"progressive jpeg {mid[0]}x{mid[1]}": (
            small,
            ".jpg",
            [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
        ),
        f"png rgba {mid[0]}x{mid[1]}": (np.dstack((small, alpha)), ".png", []),
        f"png 16-bit {mid[0]}x{mid[1]}": (small.astype(np.uint16) * 257, ".png", []),
        f"bmp {mid[0]}x{mid[1]}": (small, ".bmp", []),
        f"webp {mid[0]}x{mid[1]}": (small, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 90]),
    }
    paths = {}
    for index, (name, (image, extension, flags)) in enumerate(files.items()):
        path = directory / f"source{index}{extension}"
        cv2.imwrite(str(path), image, flags)
        paths[name] = path
    heic = _heic(directory, paths[f"progressive jpeg {mid[0]}x{mid[1]}"])
    if heic is not None:
        paths[f"heic {mid[0]}x{mid[1]}"] = heic
    for name, document in vector_sources().items():  # drawn at the size asked, not decoded
        path = directory / f"{name}.svg"
        path.write_bytes(document)
        paths[f"svg {name}"] = path
    return paths


def _heic(directory: Path, jpeg: Path) -> Path | None:
    """The mid-size photo as a HEIC, by Debian's heif-enc (libheif-examples; its x265 encoder is
    GPL and stays out of our runtime, which only decodes: docs/architecture.md); None without it."""
    encoder = shutil.which("heif-enc")
    if encoder is None:
        print("no heif-enc (apt-get install libheif-examples): no HEIC source", file=sys.stderr)
        return None
    path = directory / "source.heic"
    subprocess.run([encoder, "-q", "90", "-o", str(path), str(jpeg)], check=True, capture_output=True)
    return path


def ours(path: Path, width: int, fmt: str) -> bytes:
    return render(str(path), ImageParams(width=width, quality=QUALITY[fmt] or 82), fmt).data


def whole(path: Path) -> np.ndarray:
    """The original decoded at full size, as stored: OpenCV's, or ours for what it cannot read
    (HEIC), as the naive design would have had to."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        decoded, rgb = pipeline.decode(str(path), probe(str(path)), 1)
        image = pipeline.swap_red_blue(decoded) if rgb else decoded
    return image


def naive(path: Path, width: int, fmt: str) -> bytes:
    image = whole(path)
    height = round(image.shape[0] * width / image.shape[1])
    small = cv2.resize(image, (width, height))
    if small.dtype != np.uint8:
        small = (small / 257).astype(np.uint8)
    if fmt == "jpeg" and small.ndim == 3 and small.shape[2] == 4:
        small = small[..., :3]
    ok, buffer = cv2.imencode(EXTENSION[fmt], small)
    return buffer.tobytes()


def vips(path: Path, width: int, fmt: str) -> bytes:
    image = pyvips.Image.thumbnail(str(path), width, size="down")
    if image.format != "uchar":
        image = image.cast("uchar", shift=True) if image.format == "ushort" else image.cast("uchar")
    if fmt == "jpeg" and image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    options = f"[Q={QUALITY[fmt]}]" if QUALITY[fmt] else ""
    return bytes(image.write_to_buffer(EXTENSION[fmt] + options))


def reference(path: Path, width: int) -> np.ndarray:
    image = whole(path)
    if image.ndim == 3 and image.shape[2] == 4:  # compare colour as flattened on white
        alpha = image[..., 3:4].astype(np.float32) / (65535 if image.dtype == np.uint16 else 255)
        image = image[..., :3] * alpha + (65535 if image.dtype == np.uint16 else 255) * (1 - alpha)
    height = round(image.shape[0] * width / image.shape[1])
    scaled = cv2.resize(image.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    if image.dtype == np.uint16 or scaled.max() > 255.5:
        scaled = scaled / 257
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8)


def psnr(data: bytes, expected: np.ndarray) -> float:
    if not data:
        return math.nan
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:  # OpenCV's wheels read no JPEG XL, nor libheif's AVIF (libvips')
        decoder = imagecodecs.avif_decode if data[4:8] == b"ftyp" else imagecodecs.jpegxl_decode
        image = pipeline.swap_red_blue(decoder(data))
    if image.ndim == 3 and image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255
        image = np.clip(image[..., :3] * alpha + 255 * (1 - alpha) + 0.5, 0, 255).astype(np.uint8)
    if image.shape[:2] != expected.shape[:2]:
        image = cv2.resize(image, (expected.shape[1], expected.shape[0]), interpolation=cv2.INTER_AREA)
    return float(cv2.PSNR(image, expected))


def interleaved(calls: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[float, Any]]:
    """Median seconds and output of each call, run in turn ``repeat`` times after a warm-up each:
    the machine's drift (other load, clock changes) then weighs on all of them alike, which
    timing one after the other does not (a cell's ratio moved by 0.1 between such runs)."""
    live = {}
    for label, call in calls.items():
        try:
            call()
            live[label] = call
        except pyvips.Error:  # libvips without ImageMagick reads no BMP
            pass
    times: dict[str, list[float]] = {label: [] for label in live}
    data: dict[str, Any] = {}
    for _ in range(repeat):
        for label, call in live.items():
            start = time.perf_counter()
            data[label] = call()
            times[label].append(time.perf_counter() - start)
    return {
        label: (statistics.median(times[label]), data[label]) if label in live else (math.nan, b"")
        for label in calls
    }


def seen_original(sources: dict[str, Path], scratch: Path, repeat: int) -> list[dict[str, object]]:
    """A new size of an original already seen: ours through its reduced copy, vips from the file.
    AVIF and JPEG XL at each library's default quality and effort, as a deployment would run them."""
    name, path = next(iter(sources.items()))  # the large JPEG
    cache = VariantCache(scratch / "cache", 1 << 30)
    for width in (401, 402):  # two misses: the second keeps a reduced copy
        render_reduced(cache, "copy", str(path), ImageParams(width=width), "jpeg")
    print(f"\nnew size of an original already seen ({name}): ours from its reduced copy, vips from the file")
    rows = []
    for width in (400, 800, 1600):
        expected = reference(path, width)
        outputs = [("jpeg", 4), ("webp", 4), ("webp", 2), ("png", 4)]  # 2: PROXY_WEBP_EFFORT=2
        if width <= 800:  # the slow encoders where the goal is (libvips has no JPEG XL writer: ours alone)
            outputs += [("avif", 4), ("jxl", 4)]
        for fmt, effort in outputs:
            params = ImageParams(width=width, quality=QUALITY[fmt] or 82)
            limits = Limits(webp_effort=effort)
            derive = functools.partial(render_reduced, cache, "copy", str(path), params, fmt, limits)
            results = interleaved(
                {"ours": lambda: derive().data, "vips": functools.partial(vips, path, width, fmt)},  # noqa: B023
                repeat,
            )
            (ours_s, ours_data), (vips_s, vips_data) = results["ours"], results["vips"]
            row = {
                "width": width,
                "format": fmt if effort == 4 else f"{fmt} effort {effort}",
                "ours_bytes": len(ours_data),
                "vips_bytes": len(vips_data),
                "ours_ms": round(ours_s * 1000, 2),
                "vips_ms": round(vips_s * 1000, 2),
                "ours_vs_vips": round(ours_s / vips_s, 2),
                "ours_psnr": round(psnr(ours_data, expected), 2),
                "vips_psnr": round(psnr(vips_data, expected), 2),
            }
            rows.append(row)
            print(
                f"  w={width:<5} {row['format']:>13}: ours {row['ours_ms']:7.1f} ms,"
                f" vips {row['vips_ms']:7.1f} ms, ours/vips {row['ours_vs_vips']:.2f},"
                f" {row['ours_bytes']} / {row['vips_bytes']} bytes,"
                f" PSNR {row['ours_psnr']:.2f} / {row['vips_psnr']:.2f} dB",
                flush=True,
            )
    cache.close()
    return rows


EDITS = (  # each beside the plain resize, in one run: what the edit adds to a miss
    "",
    "rot=90",
    "flip=h",
    "blur=2",
    "blur=40",
    "sharpen=1",
    "pixelate=12",
    "trim=10",
    "mark_text=%C2%A9%20Example",
    "mark=logo",
)


def edits(sources: dict[str, Path], scratch: Path, repeat: int) -> list[dict[str, object]]:
    """The edits' cost per miss beside the plain resize of the same original, ours alone (each
    run decodes the original, as a miss does; a mark's pixels are decoded once, as a worker
    keeps them)."""
    logo = np.zeros((120, 400, 4), np.uint8)
    cv2.putText(logo, "LOGO", (10, 100), cv2.FONT_HERSHEY_SIMPLEX, 4, (255, 255, 255, 255), 12)
    logo_path = scratch / "logo.png"
    logo_path.write_bytes(cv2.imencode(".png", logo)[1].tobytes())
    overlay = pipeline.load_mark(str(logo_path))
    settings = Settings(image_root=scratch)
    rows = []
    picked = {name: path for name, path in sources.items() if name.startswith(("jpeg ", "png rgba"))}
    print("\nedits: their cost per miss beside the plain resize (ours; median)")
    for name, path in picked.items():
        for width in (400, 1600):
            calls = {}
            for edit in EDITS:
                query = "&".join(filter(None, (f"w={width}", edit)))
                params = parse_params(MultiDict(parse_qsl(query)), settings)
                mark = (
                    overlay
                    if params.mark
                    else pipeline.text_mark(params.mark_text)
                    if params.mark_text
                    else None
                )
                calls[edit or "plain"] = functools.partial(render, str(path), params, "jpeg", overlay=mark)
            results = interleaved(
                {label: lambda call=call: call().data for label, call in calls.items()}, repeat
            )
            plain = results["plain"][0]
            for label, (seconds, data) in results.items():
                row = {
                    "source": name,
                    "width": width,
                    "edit": label,
                    "ms": round(seconds * 1000, 2),
                    "vs_plain": round(seconds / plain, 2),
                    "bytes": len(data),
                }
                rows.append(row)
                print(
                    f"  {name:24} w={width:<5} {label:26} {row['ms']:8.1f} ms  x{row['vs_plain']:.2f}",
                    flush=True,
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smaller corpus, for a smoke run")
    parser.add_argument("--seen-only", action="store_true", help="only the new sizes of a seen original")
    parser.add_argument("--edits-only", action="store_true", help="only the edits beside the plain resize")
    parser.add_argument("--source", default="", help="only the sources whose name holds this, e.g. webp")
    parser.add_argument("--json", type=Path, default=Path("bench/out/transform.json"))
    parser.add_argument("--markdown", action="store_true", help="print docs/performance.md's tables too")
    args = parser.parse_args()
    pyvips.cache_set_max(0)  # no operation cache: each call decodes, as a cache miss does
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        sources = corpus(Path(scratch), args.quick)
        header = (
            f"{'source':28} {'w':>5} {'out':>4} | {'ours ms':>8} {'naive':>8} {'vips':>8}"
            f" | {'ours/vips':>9} {'naive/ours':>10} | {'bytes ours':>10} {'vips':>8}"
            f" | {'PSNR ours':>9} {'naive':>6} {'vips':>6}"
        )
        print(header)
        print("-" * len(header))
        for name, path in sources.items() if not (args.seen_only or args.edits_only) else ():
            if args.source not in name:
                continue
            source_width = probe(str(path)).width or 0
            widths = (400, 2000) if name.startswith("svg") else (400, source_width // 3)  # drawn at size
            for width in widths:
                expected = reference(path, width)
                for fmt in ("jpeg", "webp", "png"):
                    results = interleaved(
                        {
                            label: functools.partial(function, path, width, fmt)
                            for label, function in (("ours", ours), ("naive", naive), ("vips", vips))
                        },
                        args.repeat,
                    )
                    row = {
                        "source": name,
                        "width": width,
                        "format": fmt,
                        **{
                            f"{label}_ms": round(seconds * 1000, 2) for label, (seconds, _) in results.items()
                        },
                        **{f"{label}_bytes": len(data) for label, (_, data) in results.items()},
                        **{
                            f"{label}_psnr": round(psnr(data, expected), 2)
                            for label, (_, data) in results.items()
                        },
                    }
                    row["ours_vs_vips"] = round(row["ours_ms"] / row["vips_ms"], 2)
                    row["naive_vs_ours"] = round(row["naive_ms"] / row["ours_ms"], 2)
                    rows.append(row)
                    print(
                        f"{name:28} {width:5} {fmt:>4}"
                        f" | {row['ours_ms']:8.1f} {row['naive_ms']:8.1f} {row['vips_ms']:8.1f}"
                        f" | {row['ours_vs_vips']:9.2f} {row['naive_vs_ours']:10.2f}"
                        f" | {row['ours_bytes']:10} {row['vips_bytes']:8}"
                        f" | {row['ours_psnr']:9.2f} {row['naive_psnr']:6.2f} {row['vips_psnr']:6.2f}",
                        flush=True,
                    )
        seen = seen_original(sources, Path(scratch), args.repeat) if not args.edits_only else []
        edited = edits(sources, Path(scratch), args.repeat) if not args.seen_only else []
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": cv2.getNumberOfCPUs(),
        "opencv": cv2.__version__,
        "vips": pyvips.version(0) * 100 + pyvips.version(1),
    }
    args.json.write_text(
        json.dumps({"machine": machine, "rows": rows, "seen": seen, "edits": edited}, indent=2)
    )
    slower = [r for r in rows if r["ours_vs_vips"] > 1]  # NaN (vips cannot read it) compares False
    print(f"\n{len(rows)} cells; ours slower than vips in {len(slower)}; JSON in {args.json}")
    if args.markdown:
        print("\n" + doc_tables.render({"rows": rows, "seen": seen}))


if __name__ == "__main__":
    main()

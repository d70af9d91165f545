"""Bursts and overload against gunicorn as shipped (gunicorn.conf.py, default PROXY_* limits).

    .venv/bin/python bench/backpressure.py [--seconds 30] [--json bench/out/backpressure.json]

Measures, in one run: a page's burst of 24 new sizes of a 2 MP and of a 24 MP JPEG (statuses,
slowest answer); the capacity for large new variants with as many clients as transform slots
(nothing ever queues: the baseline); then a storm of enough clients that the queue's expected
wait passes PROXY_TRANSFORM_WAIT, with a hit requested every 10 ms from another process.
Prints the storm's served misses per second against the baseline, refusals by reason, the
longest answer and the hits' p50/p99.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.settings import Settings  # noqa: E402
from tests.support.load import HitProbe, burst, percentile, storm, timed_get  # noqa: E402
from tests.support.servers import start_gunicorn  # noqa: E402


def camera_like(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth colour fields with sensor-like noise, made small and scaled up (fast at 24 MP)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 64, width // 64, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.empty_like(image)
    cv2.randn(noise, (0, 0, 0), (8, 8, 8))
    return cv2.add(image, noise)


def heavy(n: int) -> str:
    """A new large WebP of the 24 MP original: the whole frame decoded every time."""
    return f"/image/camera.jpg?w={3000 + n % 1000}&q={40 + (n // 1000) % 60}&fmt=webp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--json", type=Path, default=Path("bench/out/backpressure.json"))
    args = parser.parse_args()
    wait, slots = Settings.transform_wait, Settings().max_transforms
    scratch = Path(tempfile.mkdtemp(prefix="bench-backpressure-"))
    images = scratch / "images"
    images.mkdir()
    cv2.imwrite(str(images / "page.jpg"), camera_like(1800, 1200, 1), [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(images / "camera.jpg"), camera_like(6000, 4000, 2), [cv2.IMWRITE_JPEG_QUALITY, 90])
    env = {
        "PROXY_IMAGE_ROOT": str(images),
        "PROXY_CACHE_DIR": str(scratch / "cache"),
        "GUNICORN_JSON_ACCESSLOG": "0",
    }
    server = start_gunicorn(env, workers=None)
    out: dict[str, object] = {"cpus": os.cpu_count(), "wait": wait, "slots": slots}
    try:
        for name, template in (
            ("2 MP", "/image/page.jpg?w={}&fmt=webp"),
            ("24 MP", "/image/camera.jpg?w={}"),
        ):
            results = burst(server.port, [template.format(300 + 10 * n) for n in range(24)])
            statuses = sorted({status for status, _, _ in results})
            slowest = max(seconds for _, _, seconds in results)
            out[f"burst {name}"] = {"statuses": statuses, "slowest_s": slowest}
            print(f"burst of 24 new sizes, {name} JPEG: statuses {statuses}, slowest {slowest:.2f} s")

        solo, solo_seconds = storm(server.port, slots, 10, lambda n: heavy(55_000 + n))
        capacity = sum(status == 200 for status, _, _ in solo) / solo_seconds
        render = statistics.median(seconds for _, _, seconds in solo)
        clients = min(160, math.ceil(2 * wait * slots / render) + slots)
        assert timed_get(server.port, "/image/page.jpg?w=120")[0] == 200
        with HitProbe(server.port, "/image/page.jpg?w=120", args.seconds) as probe:
            results, seconds = storm(server.port, clients, args.seconds, heavy)
            latencies, answers = probe.result()
        served = sum(status == 200 for status, _, _ in results) / seconds
        metrics = server.request("GET", "/metrics")[2].decode()
        refusals = {
            reason: float(count)
            for reason, count in re.findall(
                r'image_origin_transform_refusals_total\{reason="(\w+)"\} (\S+)', metrics
            )
        }
        storm_out = {
            "capacity_per_s": capacity,
            "median_transform_s": render,
            "clients": clients,
            "served_per_s": served,
            "served_over_capacity": served / capacity,
            "refusals": refusals,
            "longest_s": max(seconds for _, _, seconds in results),
            "hit_answers": answers,
            "hit_p50_ms": percentile(latencies, 0.5) * 1000,
            "hit_p99_ms": percentile(latencies, 0.99) * 1000,
        }
        out["storm"] = storm_out
        print(
            f"capacity, {slots} clients: {capacity:.2f} misses/s (median {render * 1000:.0f} ms)\n"
            f"storm, {clients} clients for {args.seconds:.0f} s: {served:.2f} served/s "
            f"({served / capacity:.2f}x capacity), refusals {refusals}, "
            f"longest answer {storm_out['longest_s']:.1f} s (wait {wait:.0f} s)\n"
            f"hits during the storm: {len(latencies)}, {answers}, p50 {storm_out['hit_p50_ms']:.1f} ms, "
            f"p99 {storm_out['hit_p99_ms']:.1f} ms"
        )
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

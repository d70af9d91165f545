"""Backpressure under real load: gunicorn as configured (gunicorn.conf.py, default PROXY_* limits),
alone and behind the shipped nginx front.

A page's burst of new sizes must be answered, not refused; load beyond what the instance can
serve within PROXY_TRANSFORM_WAIT is refused with a Retry-After, while hits stay fast and the
misses that are served keep the instance at its capacity.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from proxy.settings import Settings

from .support.fronts import start
from .support.images import decode, encode, large_photo, photo
from .support.load import HitProbe, Result, burst, percentile, storm, timed_get
from .support.servers import Server, start_gunicorn

pytestmark = pytest.mark.integration

WAIT = Settings.transform_wait  # the default the proof is about
SLOTS = Settings().max_transforms


@functools.cache
def originals() -> dict[str, bytes]:
    return {
        "page.jpg": encode(photo(1800, 1200, seed=3), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90),  # 2 MP
        "camera.jpg": encode(large_photo(6000, 4000, seed=4), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90),  # 24 MP
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("backpressure")
    (base / "images").mkdir()
    for name, data in originals().items():
        (base / "images" / name).write_bytes(data)
    env = {"PROXY_IMAGE_ROOT": str(base / "images"), "PROXY_CACHE_DIR": str(base / "cache")}
    server = start_gunicorn(env, workers=None)  # two workers per core, threads: the shipped config
    yield server
    server.stop()


def test_a_page_of_new_sizes_of_a_2mp_jpeg_is_all_answered(server: Server) -> None:
    results = burst(server.port, [f"/image/page.jpg?w={200 + 10 * n}&fmt=webp" for n in range(24)])
    assert [status for status, _, _ in results] == [200] * 24
    assert all(headers["x-cache"] == "MISS" for _, headers, _ in results)


def test_24_new_sizes_of_a_24mp_jpeg_are_all_answered_within_the_wait(server: Server) -> None:
    single = timed_get(server.port, "/image/camera.jpg?w=640&fmt=jpeg")
    assert single[0] == 200
    results = burst(server.port, [f"/image/camera.jpg?w={300 + 20 * n}&fmt=jpeg" for n in range(24)])
    assert [status for status, _, _ in results] == [200] * 24
    assert max(seconds for _, _, seconds in results) < WAIT + single[2]


def heavy(n: int) -> str:
    """A new large variant of the 24 MP original: the whole frame decoded, a large WebP encoded."""
    return f"/image/camera.jpg?w={3000 + n % 1000}&q={40 + (n // 1000) % 60}&fmt=webp"


@dataclass
class Storm:
    capacity: float  # served misses per second with as many clients as slots: nothing queues
    render: float  # their median time, seconds
    clients: int
    results: list[Result]
    throughput: float  # served misses per second during the storm
    hit_latencies: list[float]
    hit_answers: list[list[object]]

    @property
    def refused(self) -> list[dict[str, str]]:
        return [headers for status, headers, _ in self.results if status == 503]


def miss_storm(port: int, seconds: float, hit: str) -> Storm:
    """The capacity first, then a storm of clients enough to pass the expected wait, hits probed."""
    assert timed_get(port, hit)[0] == 200  # cached from now on
    solo, solo_seconds = storm(port, SLOTS, 8, lambda n: heavy(55_000 + n))  # sizes the storm never asks
    assert all(status == 200 for status, _, _ in solo)
    render = statistics.median(seconds for _, _, seconds in solo)
    clients = min(160, math.ceil(2 * WAIT * SLOTS / render) + SLOTS)  # about twice what fits in WAIT
    with HitProbe(port, hit, seconds) as probe:
        results, took = storm(port, clients, seconds, heavy)
        latencies, answers = probe.result()
    served = sum(status == 200 for status, _, _ in results)
    result = Storm(len(solo) / solo_seconds, render, clients, results, served / took, latencies, answers)
    print(
        f"\ncapacity {result.capacity:.2f}/s (median {render * 1000:.0f} ms) | storm of {clients} clients: "
        f"{result.throughput:.2f} served/s ({result.throughput / result.capacity:.2f}x), "
        f"{len(result.refused)} refused, longest {max(r[2] for r in results):.1f} s | "
        f"hits: {len(latencies)}, "
        f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
    )
    assert {status for status, _, _ in results} == {200, 503}
    assert all(int(headers["retry-after"]) >= 1 for headers in result.refused)
    assert all(headers["cache-control"] == "no-store" for headers in result.refused)
    assert max(seconds for _, _, seconds in results) < WAIT + 2 * render + 1  # WAIT, then one transform
    assert percentile(latencies, 0.99) < 0.05
    assert result.throughput > 0.75 * result.capacity  # no collapse: the slots stay busy
    return result


@pytest.mark.slow
def test_a_miss_storm_is_refused_by_expected_wait_while_hits_stay_fast(server: Server) -> None:
    result = miss_storm(server.port, 30, "/image/page.jpg?w=120")
    assert result.hit_answers == [[200, "HIT"]]
    metrics = server.request("GET", "/metrics")[2].decode()
    waits = dict(
        re.findall(
            r'^image_origin_transform_queue_wait_seconds_(count|bucket\{le="10.0"\}) (\S+)$', metrics, re.M
        )
    )
    assert float(waits["count"]) > 0 and waits['bucket{le="10.0"}'] == waits["count"]  # none waited > WAIT
    reasons = ("expected_wait", "waited", "queue_full")
    counted = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("image_origin_transform_refusals_total{") and any(r in line for r in reasons)
    )
    assert counted == len(result.refused)


@pytest.mark.slow
def test_bursts_and_a_storm_through_the_nginx_front(tmp_path: Path) -> None:
    way = start("nginx", tmp_path, workers=None)  # skipped without nginx (.ci/run installs it)
    try:
        for name, data in originals().items():
            (way.images / name).write_bytes(data)
        for template in ("/image/page.jpg?w={}&fmt=webp", "/image/camera.jpg?w={}&fmt=jpeg"):
            results = burst(way.port, [template.format(200 + 10 * n) for n in range(24)])
            assert [status for status, _, _ in results] == [200] * 24
        status, headers, body = way.request("/image/page.jpg?w=210&fmt=webp")
        assert status == 200 and headers["x-cache"] == "HIT"
        assert decode(body).shape[1] == 210
        result = miss_storm(way.port, 15, "/image/page.jpg?w=120")
        assert {answer[0] for answer in result.hit_answers} == {200}
        assert all(headers["x-cache"] != "HIT" for headers in result.refused)  # never a cached 503
    finally:
        way.stop()

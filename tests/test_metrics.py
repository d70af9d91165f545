"""Prometheus metrics: in one process, and added up across gunicorn's workers."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from proxy import create_app
from proxy.settings import Settings

from .support.servers import REPO, Server, start_gunicorn


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_counters_follow_requests(client: FlaskClient) -> None:
    before = {
        "ok": sample("image_origin_requests_total", status="200"),
        "bad": sample("image_origin_requests_total", status="400"),
        "hit": sample("image_origin_cache_requests_total", outcome="hit"),
        "miss": sample("image_origin_cache_requests_total", outcome="miss"),
        "runs": sample("image_origin_pipeline_runs_total"),
        "webp": sample("image_origin_transform_seconds_count", format="webp"),
        "sources": sample("image_origin_source_pixels_count"),
    }
    client.get("/image/photo.jpg?w=77&fmt=webp")
    client.get("/image/photo.jpg?w=77&fmt=webp")
    client.get("/image/photo.jpg?w=-1")
    assert sample("image_origin_requests_total", status="200") - before["ok"] == 2
    assert sample("image_origin_requests_total", status="400") - before["bad"] == 1
    assert sample("image_origin_cache_requests_total", outcome="miss") - before["miss"] == 1
    assert sample("image_origin_cache_requests_total", outcome="hit") - before["hit"] == 1
    assert sample("image_origin_pipeline_runs_total") - before["runs"] == 1
    assert sample("image_origin_transform_seconds_count", format="webp") - before["webp"] == 1
    assert sample("image_origin_source_pixels_count") - before["sources"] == 1
    assert sample("image_origin_transforms_in_flight") == 0


def test_metrics_endpoint(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    assert "image_origin_requests_total" in response.get_data(as_text=True)


@pytest.mark.slow
def test_evictions_are_counted(settings: Settings) -> None:
    client = create_app(replace(settings, cache_size=16 << 20)).test_client()  # the smallest allowed
    before = sample("image_origin_cache_evictions_total")
    for width in range(300, 600, 2):  # 150 PNGs of 100-300 KB: about 28 MB
        assert client.get(f"/image/photo.jpg?w={width}&fmt=png").status_code == 200
    assert sample("image_origin_cache_evictions_total") > before


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("images")
    shutil.copy(REPO / "samples" / "rocket.jpg", root / "rocket.jpg")
    server = start_gunicorn(
        {"PROXY_IMAGE_ROOT": str(root), "PROXY_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}, workers=3
    )
    yield server
    server.stop()


def scrape(server: Server) -> dict[str, float]:
    status, _, body = server.request("GET", "/metrics")
    assert status == 200
    values = {}
    for line in body.decode().splitlines():
        match = re.match(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


@pytest.mark.integration
def test_workers_add_up(workers: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    urls = [f"/image/rocket.jpg?w={w}" for w in range(50, 62)] * 2 + ["/image/missing.jpg"] * 3
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda url: workers.request("GET", url)[0], urls))
    assert statuses.count(200) == 24 and statuses.count(404) == 3
    for scrapes in range(4):  # whichever worker answers the scrape, the totals are the same
        values = scrape(workers)
        assert values['image_origin_requests_total{status="200"}'] == 24 + scrapes  # earlier scrapes count
        assert values['image_origin_requests_total{status="404"}'] == 3
        assert values["image_origin_pipeline_runs_total"] == 12
        hits = values['image_origin_cache_requests_total{outcome="hit"}']
        misses = values['image_origin_cache_requests_total{outcome="miss"}']
        assert hits + misses == 24 and misses == 12
        assert values["image_origin_transforms_in_flight"] == 0
    for reason in ("expected_wait", "waited", "queue_full", "deadline"):  # a series from the start
        assert values[f'image_origin_transform_refusals_total{{reason="{reason}"}}'] == 0

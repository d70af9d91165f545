"""Prometheus metrics, correct across gunicorn's worker processes.

Under gunicorn, gunicorn.conf.py points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the app is imported, each worker writes its samples there, and ``/metrics``, on any
worker, adds them up. Elsewhere (tests, the CLI) the ordinary in-process registry is used.
"""

from __future__ import annotations

import os

from flask import Flask, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("image_origin_requests_total", "HTTP requests answered, by status", ["status"])
CACHE = Counter("image_origin_cache_requests_total", "Image requests by cache outcome", ["outcome"])
# Bound once, not per request; "shared": a local miss answered from the result tier (results/).
CACHE_HITS, CACHE_MISSES, CACHE_SHARED = CACHE.labels("hit"), CACHE.labels("miss"), CACHE.labels("shared")
RESULT_READS = Counter(
    "image_origin_result_reads_total",
    "Looks in the shared result tier: hit, miss, expired, damaged (removed), timeout, error, "
    "skipped (cooling down after failures)",
    ["outcome"],
)
RESULT_WRITES = Counter(
    "image_origin_result_writes_total",
    "Renders written to the shared result tier: stored, error, dropped (too many waiting), skipped",
    ["outcome"],
)
EVICTIONS = Counter("image_origin_cache_evictions_total", "Entries evicted to keep a cache under its bound")
# Per cache (variants, copies of remote originals); every worker measures the same disk, so the
# latest measurement of any live worker is the one shown.
CACHE_EFFECTIVE = Gauge(
    "image_origin_cache_effective_bytes",
    "Bytes a cache may hold now: its configured bound, or less while its disk is short of space",
    ["cache"],
    multiprocess_mode="livemostrecent",
)
CACHE_DEGRADED = Gauge(
    "image_origin_cache_degraded",
    "1 while a cache is held under its configured bound for lack of disk space",
    ["cache"],
    multiprocess_mode="livemostrecent",
)
for _outcome in ("hit", "miss", "expired", "damaged", "timeout", "error", "skipped"):
    RESULT_READS.labels(_outcome)  # at 0 from the start, as REFUSALS below
for _outcome in ("stored", "error", "dropped", "skipped"):
    RESULT_WRITES.labels(_outcome)
PURGES = Counter("image_origin_purges_total", "Originals purged (PURGE requests and the CLI)")
PURGED = Counter("image_origin_purged_entries_total", "Cache entries removed by purges")
RENDERS = Counter("image_origin_pipeline_runs_total", "Pipeline runs (decode, transform, encode)")
IN_FLIGHT = Gauge("image_origin_transforms_in_flight", "Transforms running now", multiprocess_mode="livesum")
QUEUED = Gauge(
    "image_origin_transform_queue", "Misses waiting for a transform slot", multiprocess_mode="livesum"
)
QUEUE_WAIT_SECONDS = Histogram(
    "image_origin_transform_queue_wait_seconds",
    "Time misses waited for a transform slot (those that got one)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REFUSALS = Counter(
    "image_origin_transform_refusals_total",
    "Misses answered 503, by reason: expected_wait, waited, queue_full, deadline",
    ["reason"],
)
for _reason in ("expected_wait", "waited", "queue_full", "deadline"):  # at 0 from the start, not
    REFUSALS.labels(_reason)  # absent until the first refusal (a rate of an absent series is nothing)
TRANSFORM_SECONDS = Histogram(
    "image_origin_transform_seconds",
    "Time to render a variant, by output format",
    ["format"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SOURCE_BYTES = Histogram(
    "image_origin_source_bytes",
    "Size of originals rendered",
    buckets=(1e4, 1e5, 1e6, 5e6, 1e7, 5e7),
)
SOURCE_PIXELS = Histogram(
    "image_origin_source_pixels",
    "Declared pixels of originals rendered",
    buckets=(1e5, 1e6, 6e6, 12e6, 24e6, 50e6),
)


def register_metrics(app: Flask) -> None:
    """Serve /metrics; requests are counted by access.AccessLog, which sees every answer."""

    @app.get("/metrics")
    def metrics() -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = REGISTRY
        body = generate_latest(registry)
        return Response(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

"""python -m proxy: cache stats, clear and purge, warm, tag, purge; run as an operator would.

The commands run in this process (conftest.py's ``cli``: ``main(argv)`` with the PROXY_* variables
an operator would set, what it printed captured); one test runs ``python -m proxy`` itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from proxy import create_app
from proxy.purge import mount_tag, original_tag
from proxy.settings import Settings

from .support.cli import Cli
from .support.servers import REPO, free_port, start_gunicorn
from .support.upstreams import WebOriginals


def stats(cli: Cli) -> dict[str, int]:
    result = cli("cache", "stats")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.integration
def test_python_m_proxy_runs_the_commands(settings: Settings, cli: Cli) -> None:
    """The module runs as a program and exits with main's status (the rest call main here)."""
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("PROXY_")},
        "PROXY_IMAGE_ROOT": str(settings.image_root),
        "PROXY_CACHE_DIR": str(settings.cache_dir),
    }

    def python_m_proxy(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "proxy", *args],
            cwd=REPO,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )

    warmed = python_m_proxy("warm", "photo.jpg", "--sizes", "100", "--fmt", "webp")
    assert warmed.returncode == 0 and "1/1" in warmed.stderr, warmed.stderr
    assert stats(cli)["entries"] == 1
    refused = python_m_proxy("cache", "stats", PROXY_CACHE_SIZE="lots")
    assert refused.returncode == 2 and refused.stderr.startswith("error: PROXY_CACHE_SIZE"), refused.stderr


def test_warm_renders_what_requests_then_hit(settings: Settings, cli: Cli) -> None:
    result = cli("warm", "photo.jpg", "--sizes", "100,200", "--fmt", "webp,jpeg")
    assert result.returncode == 0, result.stderr
    assert "4/4" in result.stderr and result.stderr.count("rendered") == 4
    assert stats(cli)["entries"] == 4 and stats(cli)["renders"] == 4

    again = cli("warm", "photo.jpg", "--sizes", "100,200", "--fmt", "webp,jpeg")
    assert again.stderr.count("cached") == 4 and stats(cli)["renders"] == 4

    client = create_app(settings).test_client()
    for query in ("w=100&fmt=webp", "w=200&fmt=jpeg", "w=0200&fmt=jpeg"):
        response = client.get(f"/image/photo.jpg?{query}")
        assert response.status_code == 200 and response.headers["X-Cache"] == "HIT", query
    negotiated = client.get("/image/photo.jpg?w=100&fmt=auto", headers={"Accept": "image/webp"})
    assert negotiated.headers["X-Cache"] == "HIT"


def test_warm_auto_is_the_variant_that_no_fmt_and_the_named_format_hit(settings: Settings, cli: Cli) -> None:
    """fmt=auto warmed without a browser's Accept is JPEG for a JPEG: the same variant as no fmt
    and fmt=jpeg, not a fourth copy of it."""
    assert cli("warm", "photo.jpg", "--sizes", "120", "--fmt", "auto,jpeg").returncode == 0
    assert stats(cli)["entries"] == 1 and stats(cli)["renders"] == 1
    client = create_app(settings).test_client()
    for query in ("w=120", "w=120&fmt=jpeg"):
        response = client.get(f"/image/photo.jpg?{query}")
        assert response.mimetype == "image/jpeg" and response.headers["X-Cache"] == "HIT", query


@pytest.mark.slow
def test_an_idle_workers_counts_reach_the_stats(settings: Settings, cli: Cli) -> None:
    """Counts are added to the shared totals at most once a second, and a second after the last
    request at the latest: a worker that then sits idle does not keep them."""
    app = create_app(settings)
    client = app.test_client()
    client.get("/image/photo.jpg?w=50")
    client.get("/image/photo.jpg?w=50")  # counted within the second after the first flush
    time.sleep(1.5)
    assert stats(cli)["hits"] == 1  # without the app closing its cache
    app.extensions["proxy"].cache.close()


def test_stats_count_hits_misses_and_bytes(settings: Settings, cli: Cli) -> None:
    app = create_app(settings)
    client = app.test_client()
    client.get("/image/photo.jpg?w=50")
    client.get("/image/photo.jpg?w=50")
    client.get("/image/photo.jpg?w=60")
    app.extensions["proxy"].cache.close()  # workers add their counts at most once a second, and on close
    numbers = stats(cli)
    assert numbers["entries"] == 2 and numbers["renders"] == 2
    assert numbers["hits"] == 1 and numbers["misses"] >= 2
    assert 0 < numbers["bytes"] <= numbers["limit"] == settings.cache_size


def test_clear_empties_the_cache(settings: Settings, cli: Cli) -> None:
    cli("warm", "photo.jpg", "--sizes", "80", "--fmt", "png")
    assert stats(cli)["entries"] == 1
    result = cli("cache", "clear")
    assert result.returncode == 0 and "removed" in result.stdout and "reset the hit, miss" in result.stdout
    assert stats(cli)["entries"] == 0 and stats(cli)["renders"] == 0


def test_warm_reports_errors_and_fails(settings: Settings, cli: Cli) -> None:
    missing = cli("warm", "missing.jpg", "--sizes", "100", "--fmt", "webp")
    assert missing.returncode == 1 and "error 404" in missing.stderr
    bad = cli("warm", "photo.jpg", "--sizes", "100,0", "--fmt", "webp")
    assert bad.returncode == 1 and "error 400" in bad.stderr and "rendered" in bad.stderr


def test_bad_settings_name_the_variable(cli: Cli) -> None:
    for name, value in (
        ("PROXY_CACHE_SIZE", "lots"),
        ("PROXY_MAX_SOURCE_PIXELS", "abc"),
        ("PROXY_SECRET", " "),
    ):
        result = cli("cache", "stats", **{name: value})
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {name}"), lines
    misspelt = cli("cache", "stats", PROXY_CAHCE_DIR="/tmp")
    assert misspelt.returncode == 0 and "did you mean PROXY_CACHE_DIR?" in misspelt.stderr
    refused = cli("cache", "stats", PROXY_PRESETS="bad=w:0")  # as the service refuses it
    assert refused.returncode == 2 and "PROXY_PRESETS" in refused.stderr


def test_remote_originals_are_warmed_counted_and_cleared(
    settings: Settings, cli: Cli, upstream: WebOriginals
) -> None:
    upstream.files["photo.jpg"] = (settings.image_root / "photo.jpg").read_bytes()
    remote = {"PROXY_SOURCE": f"web/={upstream.base}img/"}
    result = cli("warm", "web/photo.jpg", "--sizes", "100,200", "--fmt", "png", **remote)
    assert result.returncode == 0 and result.stderr.count("rendered") == 2, result.stderr
    assert upstream.gets["/img/photo.jpg"] == 1  # two sizes, one download
    numbers = json.loads(cli("cache", "stats", **remote).stdout)
    assert numbers["entries"] == 2 and numbers["sources"]["entries"] >= 2  # the copy and its record
    cleared = cli("cache", "clear", **remote)
    assert cleared.returncode == 0 and "source copies" in cleared.stdout
    assert json.loads(cli("cache", "stats", **remote).stdout)["sources"]["entries"] == 0


def test_tag_prints_what_a_cdn_purges_by(settings: Settings, cli: Cli) -> None:
    result = cli("tag", "photo.jpg", "a b,c.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == [original_tag("photo.jpg"), original_tag("a b,c.png")]
    mounted = cli("tag", "shop/x.jpg", PROXY_SOURCE=f"shop/={settings.image_root.as_uri()}")
    assert mounted.stdout.split() == [original_tag("shop/x.jpg"), mount_tag("shop/")]


def test_cache_purge_drops_one_originals_variants(settings: Settings, cli: Cli) -> None:
    assert cli("warm", "photo.jpg", "--sizes", "100,200", "--fmt", "webp").returncode == 0
    assert cli("warm", "quadrants.png", "--sizes", "100", "--fmt", "webp").returncode == 0
    result = cli("cache", "purge", "photo.jpg", "unknown.jpg")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["photo.jpg: purged 2 entries", "unknown.jpg: purged 0 entries"]
    assert stats(cli)["entries"] == 1
    assert cli("cache", "purge").returncode == 2  # ids are needed


@pytest.mark.integration
def test_purge_reaches_every_instance_and_says_which_failed(settings: Settings, cli: Cli) -> None:
    token = "a-purge-token-long-enough"
    env = {"PROXY_IMAGE_ROOT": str(settings.image_root), "PROXY_PURGE_TOKEN": token}
    servers = [
        start_gunicorn({**env, "PROXY_CACHE_DIR": str(settings.cache_dir / str(n))}, workers=1)
        for n in (1, 2)
    ]
    try:
        for server in servers:
            assert server.request("GET", "/image/photo.jpg?w=50")[0] == 200
        bases = [f"http://127.0.0.1:{server.port}" for server in servers]
        result = cli("purge", "--instances", ",".join(bases), "photo.jpg", PROXY_PURGE_TOKEN=token)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines() == [f"{base} photo.jpg: purged 1" for base in bases]
        for server in servers:
            assert server.request("GET", "/image/photo.jpg?w=50")[1]["x-cache"] == "MISS"
        dead = f"http://127.0.0.1:{free_port()}"
        failing = cli("purge", "--instances", f"{bases[0]},{dead}", "photo.jpg", PROXY_PURGE_TOKEN=token)
        assert failing.returncode == 1 and f"{bases[0]} photo.jpg: purged 1" in failing.stdout
        assert f"{dead} photo.jpg: failed" in failing.stdout
        wrong = cli("purge", "--instances", bases[0], "photo.jpg", PROXY_PURGE_TOKEN=token + "x")
        assert wrong.returncode == 1 and "HTTP 403" in wrong.stdout
        fetched = "url:http://127.0.0.1:9/a.jpg"  # an original of /url/: purged at /url/<base64url>
        result = cli("purge", "--instances", bases[0], fetched, PROXY_PURGE_TOKEN=token)
        assert result.returncode == 0 and result.stdout == f"{bases[0]} {fetched}: purged 0\n"
    finally:
        for server in servers:
            server.stop()


@pytest.mark.slow
@pytest.mark.integration
def test_a_purge_reaches_every_worker_within_a_second(settings: Settings) -> None:
    """Each worker keeps small hits in memory; after a purge by one, none serves from memory."""
    token = "a-purge-token-long-enough"
    env = {"PROXY_IMAGE_ROOT": str(settings.image_root), "PROXY_PURGE_TOKEN": token}
    server = start_gunicorn({**env, "PROXY_CACHE_DIR": str(settings.cache_dir)}, workers=2)
    try:
        for _ in range(5):
            for _ in range(8):  # on both workers, most likely: each remembers the variant
                assert server.request("GET", "/image/photo.jpg?w=64")[0] == 200
            status, _, _ = server.request("PURGE", "/image/photo.jpg", {"Authorization": f"Bearer {token}"})
            assert status == 200
            time.sleep(1.0)
            assert server.request("GET", "/image/photo.jpg?w=64")[1]["x-cache"] == "MISS"
    finally:
        server.stop()

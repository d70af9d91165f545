"""python -m proxy: cache stats, cache clear, warm; run as an operator would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from proxy import create_app
from proxy.settings import Settings

from .server import REPO
from .upstreams import web_originals


def run(settings: Settings, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PROXY_IMAGE_ROOT": str(settings.image_root),
        "PROXY_CACHE_DIR": str(settings.cache_dir),
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def stats(settings: Settings) -> dict[str, int]:
    result = run(settings, "cache", "stats")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_warm_renders_what_requests_then_hit(settings: Settings) -> None:
    result = run(settings, "warm", "photo.jpg", "--sizes", "100,200", "--fmt", "webp,jpeg")
    assert result.returncode == 0, result.stderr
    assert "4/4" in result.stderr and result.stderr.count("rendered") == 4
    assert stats(settings)["entries"] == 4 and stats(settings)["renders"] == 4

    again = run(settings, "warm", "photo.jpg", "--sizes", "100,200", "--fmt", "webp,jpeg")
    assert again.stderr.count("cached") == 4 and stats(settings)["renders"] == 4

    client = create_app(settings).test_client()
    for query in ("w=100&fmt=webp", "w=200&fmt=jpeg", "w=0200&fmt=jpeg"):
        response = client.get(f"/image/photo.jpg?{query}")
        assert response.status_code == 200 and response.headers["X-Cache"] == "HIT", query
    negotiated = client.get("/image/photo.jpg?w=100&fmt=auto", headers={"Accept": "image/webp"})
    assert negotiated.headers["X-Cache"] == "HIT"


def test_stats_count_hits_misses_and_bytes(settings: Settings) -> None:
    app = create_app(settings)
    client = app.test_client()
    client.get("/image/photo.jpg?w=50")
    client.get("/image/photo.jpg?w=50")
    client.get("/image/photo.jpg?w=60")
    app.extensions["proxy"].cache.close()  # workers add their counts at most once a second, and on close
    numbers = stats(settings)
    assert numbers["entries"] == 2 and numbers["renders"] == 2
    assert numbers["hits"] == 1 and numbers["misses"] >= 2
    assert 0 < numbers["bytes"] <= numbers["limit"] == settings.cache_size


def test_clear_empties_the_cache(settings: Settings) -> None:
    run(settings, "warm", "photo.jpg", "--sizes", "80", "--fmt", "png")
    assert stats(settings)["entries"] == 1
    result = run(settings, "cache", "clear")
    assert result.returncode == 0 and "removed" in result.stdout
    assert stats(settings)["entries"] == 0


def test_warm_reports_errors_and_fails(settings: Settings) -> None:
    missing = run(settings, "warm", "missing.jpg", "--sizes", "100", "--fmt", "webp")
    assert missing.returncode == 1 and "error 404" in missing.stderr
    bad = run(settings, "warm", "photo.jpg", "--sizes", "100,0", "--fmt", "webp")
    assert bad.returncode == 1 and "error 400" in bad.stderr and "rendered" in bad.stderr


def test_bad_settings_name_the_variable(settings: Settings, tmp_path: Path) -> None:
    result = run(settings, "cache", "stats", PROXY_CACHE_SIZE="lots")
    assert result.returncode == 2 and "PROXY_CACHE_SIZE" in result.stderr


def test_remote_originals_are_warmed_counted_and_cleared(settings: Settings) -> None:
    with web_originals() as upstream:
        upstream.files["photo.jpg"] = (settings.image_root / "photo.jpg").read_bytes()
        remote = {"PROXY_SOURCE": f"web/={upstream.base}img/"}
        result = run(settings, "warm", "web/photo.jpg", "--sizes", "100,200", "--fmt", "png", **remote)
        assert result.returncode == 0 and result.stderr.count("rendered") == 2, result.stderr
        assert upstream.gets["/img/photo.jpg"] == 1  # two sizes, one download
        numbers = json.loads(run(settings, "cache", "stats", **remote).stdout)
        assert numbers["entries"] == 2 and numbers["sources"]["entries"] >= 2  # the copy and its record
        cleared = run(settings, "cache", "clear", **remote)
        assert cleared.returncode == 0 and "source copies" in cleared.stdout
        assert json.loads(run(settings, "cache", "stats", **remote).stdout)["sources"]["entries"] == 0

"""The caches on a real file system far smaller than their bound: a full disk is not a dead cache.

Each test mounts a 12 MiB tmpfs (as root, or through ``sudo -n``) and puts the cache directory on
it with a bound of 1 GiB, so the bound is never what stops the cache: the disk is.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from proxy import create_app
from proxy.cache import VariantCache
from proxy.cache.store import _out_of_space
from proxy.settings import Settings

from .support.images import decode
from .support.servers import REPO, Server, start_gunicorn
from .support.variants import MiB, present, rendered

pytestmark = pytest.mark.integration

GiB = 1 << 30
DEGRADED = "No space left on device for"  # the one warning when a cache starts holding less
RECOVERED = "has the disk space for its bound again"


def _as_root(*command: str) -> subprocess.CompletedProcess[bytes]:
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run([*prefix, *command], capture_output=True)


def _resize(disk: Path, size: str) -> None:
    result = _as_root("mount", "-o", f"remount,size={size}", str(disk))
    assert result.returncode == 0, result.stderr.decode()


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "disk"
    path.mkdir()
    options = f"size=12m,mode=755,uid={os.getuid()},gid={os.getgid()}"  # ours, even through sudo
    mounted = _as_root("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield path
    if _as_root("umount", str(path)).returncode != 0:  # still open somewhere: detach it anyway
        _as_root("umount", "-l", str(path))


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def gauge(name: str, cache: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"cache": cache})


def get(client: FlaskClient, url: str) -> tuple[int, str | None, bytes]:
    """Status, X-Cache and body; the answer closed (a hit streams from an open file)."""
    response = client.get(url)
    with response:
        return response.status_code, response.headers.get("X-Cache"), response.get_data()


def orphans(directory: Path) -> set[str]:
    """Value files that no row of the index names: space nothing would ever give back."""
    files = {str(path.relative_to(directory)) for path in directory.rglob("*.val")}
    with sqlite3.connect(directory / "cache.db") as index:
        named = {name for (name,) in index.execute("SELECT filename FROM Cache WHERE filename IS NOT NULL")}
    return files - named


def test_variants_keep_caching_on_a_disk_smaller_than_the_bound(
    disk: Path, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    filler = disk / "filler"
    filler.write_bytes(bytes(3 * MiB))  # someone else's file, deleted later to give space back
    settings = replace(settings, cache_dir=disk / "cache", cache_size=GiB, memory_cache_size=0)
    app = create_app(settings)
    cache = app.extensions["proxy"].cache
    client = app.test_client()
    widths = range(300, 600, 3)  # 100 PNGs of 100-300 KB
    rendered_bytes = 0
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        for n, width in enumerate(widths):
            status, outcome, body = get(client, f"/image/photo.jpg?w={width}&fmt=png")
            assert status == 200 and outcome == "MISS"
            assert decode(body).shape == (round(width * 400 / 600), width, 3)
            rendered_bytes += len(body)
            # Stored: the cache kept caching after the disk filled, and keeps more than the last.
            assert get(client, f"/image/photo.jpg?w={width}&fmt=png") == (200, "HIT", body)
            if n >= 3:
                assert get(client, f"/image/photo.jpg?w={widths[n - 3]}&fmt=png")[1] == "HIT"
        assert rendered_bytes > 18 * MiB  # half again the disk
        assert get(client, f"/image/photo.jpg?w={widths[0]}&fmt=png")[1] == "MISS"  # evicted
    assert caplog.text.count(DEGRADED) == 1 and "unavailable" not in caplog.text
    assert orphans(settings.cache_dir) == set()

    health = client.get("/healthz")
    assert health.status_code == 200
    state = health.get_json()["cache"]
    assert state["state"] == "degraded" and state["bound"] == GiB
    degraded = state["effective"]
    assert 4 * MiB < degraded < 12 * MiB
    assert gauge("image_origin_cache_degraded", "variants") == 1
    assert gauge("image_origin_cache_effective_bytes", "variants") == degraded
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["cache"]["state"] == "degraded"

    filler.unlink()  # space comes back: the next write sees it
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        assert get(client, "/image/photo.jpg?w=200&fmt=png")[0] == 200
        grown = client.get("/healthz").get_json()["cache"]
        assert grown["state"] == "degraded" and grown["effective"] > degraded + 2 * MiB
        _resize(disk, "2g")  # more than the bound: the configured bound holds again
        assert get(client, "/image/photo.jpg?w=201&fmt=png")[0] == 200
    assert client.get("/healthz").get_json()["cache"] == {"state": "ok", "bound": GiB, "effective": GiB}
    assert gauge("image_origin_cache_degraded", "variants") == 0
    assert gauge("image_origin_cache_effective_bytes", "variants") == GiB
    assert caplog.text.count(RECOVERED) == 1 and caplog.text.count(DEGRADED) == 1
    cache.close()


def test_a_write_that_finds_the_disk_full_makes_room_and_is_stored(
    disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _resize(disk, "64m")
    cache = VariantCache(disk / "c", 16 * MiB, retry_after=0)  # fits: free space looked at now and then
    for i in range(60):  # 12 MB
        cache.put(f"k{i}", rendered(200_000, seed=i))
    assert cache.health()["state"] == "ok"
    (disk / "filler").write_bytes(bytes(free_bytes(disk) - 64 * 1024))  # filled by someone else
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        cache.put("new", rendered(200_000, seed=99))  # before the cache looks again: ENOSPC
    assert "[Errno 28]" in caplog.text and "unavailable" not in caplog.text
    assert present(cache, "new") and present(cache, "k59")  # culled the oldest, then stored
    assert not present(cache, "k0")
    assert cache.health()["state"] == "degraded"
    assert orphans(disk / "c") == set()  # the partial file of the failed write is gone
    cache.close()


def test_sqlite_full_is_out_of_space(disk: Path) -> None:
    (disk / "filler").write_bytes(bytes(free_bytes(disk) - 256 * 1024))
    index = sqlite3.connect(disk / "index.db", isolation_level=None)  # each insert commits
    with closing(index), pytest.raises(sqlite3.Error) as raised:
        index.execute("CREATE TABLE t (v BLOB)")
        for _ in range(100):
            index.execute("INSERT INTO t VALUES (?)", (os.urandom(16384),))
    assert _out_of_space(raised.value)
    assert not _out_of_space(sqlite3.OperationalError("database is locked"))


def test_the_copies_cache_keeps_the_newest_originals(disk: Path) -> None:
    copies = VariantCache(disk / "sources", GiB, files_only=True, retry_after=0)
    blobs = [random.Random(i).randbytes(400_000) for i in range(60)]  # 24 MB
    for i, blob in enumerate(blobs):
        copies.put_blob(f"o{i}", blob, tag=f"o-{i}")
        handle = copies.open_blob(f"o{i}")
        assert handle is not None, i
        with handle:
            assert handle.read() == blob
    assert _held(copies, [f"o{i}" for i in range(55, 60)]) == 5 * 400_000  # the newest five
    assert _held(copies, ["o0"]) == 0
    assert copies.health()["state"] == "degraded"
    assert gauge("image_origin_cache_degraded", "copies") == 1
    copies.close()


def _held(cache: VariantCache, keys: list[str]) -> int:
    held = 0
    for key in keys:
        handle = cache.open_blob(key)
        if handle is not None:
            held += len(handle.read())
            handle.close()
    return held


def test_two_caches_on_one_disk_do_not_starve_each_other(disk: Path) -> None:
    """Variants fill the disk first; the copies still store each new original, and take space
    back from the variants as both go on writing."""
    variants = VariantCache(disk / "cache", GiB, retry_after=0)
    copies = VariantCache(disk / "cache" / "sources", GiB, files_only=True, retry_after=0)
    for i in range(60):  # 12 MB of variants on a 12 MiB disk
        variants.put(f"v{i}", rendered(200_000, seed=i))
    keys = [f"c{i}" for i in range(60)]
    for i, key in enumerate(keys):
        copies.put_blob(key, random.Random(1000 + i).randbytes(200_000))
        assert _held(copies, [key]) == 200_000, key
        variants.put(f"v{60 + i}", rendered(200_000, seed=60 + i))
        assert present(variants, f"v{60 + i}")
    held_copies = _held(copies, keys)
    held_variants = sum(200_000 for i in range(120) if present(variants, f"v{i}"))
    assert held_copies >= (held_copies + held_variants) / 4 and held_variants > MiB, (
        held_copies,
        held_variants,
    )
    assert variants.health()["state"] == copies.health()["state"] == "degraded"
    variants.close()
    copies.close()


def test_a_quota_that_free_space_does_not_show(
    disk: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A file system that reports far more free space than writes find: the failed writes teach
    the cache what fits, and it holds to it instead of growing back on every look."""
    real = os.statvfs
    extra = 100 * GiB

    def overstated(path: str | os.PathLike[str]) -> os.statvfs_result:
        stat = real(path)
        blocks = extra // stat.f_frsize
        fields = list(stat)
        fields[2], fields[3], fields[4] = (
            stat.f_blocks + blocks,
            stat.f_bfree + blocks,
            stat.f_bavail + blocks,
        )
        return os.statvfs_result(fields)

    monkeypatch.setattr(os, "statvfs", overstated)
    cache = VariantCache(disk / "c", GiB, retry_after=0)
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        for i in range(120):  # 24 MB
            cache.put(f"k{i}", rendered(200_000, seed=i))
            assert present(cache, f"k{i}"), i
    assert caplog.text.count(DEGRADED) == 1 and RECOVERED not in caplog.text
    assert "unavailable" not in caplog.text and cache.health()["state"] == "degraded"
    assert orphans(disk / "c") == set()
    cache.close()


def test_gunicorn_workers_share_a_full_disk(disk: Path) -> None:
    images = disk.parent / "images"
    images.mkdir()
    (images / "photo.jpg").write_bytes((REPO / "samples" / "rocket.jpg").read_bytes())
    env = {
        "PROXY_IMAGE_ROOT": str(images),
        "PROXY_CACHE_DIR": str(disk / "cache"),
        "PROXY_CACHE_SIZE": "1GiB",
        "PROXY_MEMORY_CACHE_SIZE": "0",
    }
    server: Server = start_gunicorn(env, workers=2)
    try:
        for width in range(300, 640, 4):  # 85 PNGs of 200-500 KB
            url = f"/image/photo.jpg?w={width}&fmt=png"
            status, _, body = server.request("GET", url, {})
            assert status == 200 and decode(body).shape[1] == width
            status, headers, again = server.request("GET", url, {})
            assert status == 200 and headers["x-cache"] == "HIT" and again == body
        status, _, metrics = server.request("GET", "/metrics", {})
        assert 'image_origin_cache_degraded{cache="variants"} 1.0' in metrics.decode()
        status, _, ready = server.request("GET", "/readyz", {})
        assert status == 200
        assert DEGRADED in server.log_text() and "unavailable" not in server.log_text()
    finally:
        server.stop()

"""The variant cache on a real diskcache in a temporary directory."""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import diskcache
import pytest

from proxy.app import variant_key
from proxy.cache import MEMORY_ENTRY, VariantCache, directory_bytes
from proxy.errors import UnsupportedImage
from proxy.params import ImageParams
from proxy.pipeline import Rendered
from proxy.sources import Source

from .support.servers import REPO
from .support.variants import MiB, present, rendered

SOURCE = Source("a.jpg", "1-2-3", datetime(2026, 1, 1, tzinfo=UTC), "/dev/null")


def test_small_and_large_values_round_trip(cache: VariantCache) -> None:
    for size in (1000, 200_000):  # inline in SQLite, and a file of its own
        data = rendered(size, seed=size)
        cache.put(f"k{size}", data)
        variant = cache.get(f"k{size}")
        assert variant is not None and variant.hit
        assert variant.mime == "image/webp" and variant.length == size
        body = variant.body if isinstance(variant.body, bytes) else variant.body.read()
        assert body == data.data
        if not isinstance(variant.body, bytes):
            variant.body.close()


def test_miss_is_none(cache: VariantCache) -> None:
    assert not present(cache, "absent")


def test_key_covers_everything_that_changes_the_bytes() -> None:
    base = variant_key(SOURCE, ImageParams(width=100, fmt="webp"), "webp")
    assert base == variant_key(SOURCE, ImageParams(width=100, fmt="auto"), "webp")  # one variant
    changed = Source(SOURCE.id, "1-2-4", SOURCE.last_modified, SOURCE.path)
    others = {
        variant_key(changed, ImageParams(width=100, fmt="webp"), "webp"),
        variant_key(SOURCE, ImageParams(width=101, fmt="webp"), "webp"),
        variant_key(SOURCE, ImageParams(width=100, fmt="jpeg"), "jpeg"),
        variant_key(SOURCE, ImageParams(width=100, fmt="webp", quality=50), "webp"),
        variant_key(
            Source("b.jpg", "1-2-3", SOURCE.last_modified, "/dev/null"), ImageParams(width=100), "webp"
        ),
    }
    assert base not in others and len(others) == 5


def test_fetch_renders_once_then_hits(cache: VariantCache) -> None:
    calls = []

    def produce() -> Rendered:
        calls.append(1)
        return rendered(5000)

    first = cache.fetch("k", produce, keep=lambda: True)
    second = cache.fetch("k", produce, keep=lambda: True)
    assert (first.hit, second.hit) == (False, True)
    assert len(calls) == 1
    assert cache.stats()["renders"] == 1


def test_fetch_does_not_keep_what_keep_refuses(cache: VariantCache) -> None:
    cache.fetch("k", lambda: rendered(100), keep=lambda: False)
    assert not present(cache, "k")


def test_errors_are_not_cached_and_release_the_lock(cache: VariantCache) -> None:
    def fail() -> Rendered:
        raise UnsupportedImage("nope")

    with pytest.raises(UnsupportedImage):
        cache.fetch("k", fail, keep=lambda: True)
    assert not present(cache, "k")
    started = time.monotonic()
    assert not cache.fetch("k", lambda: rendered(10), keep=lambda: True).hit
    assert time.monotonic() - started < 0.5  # the lock was released, nobody waited


def test_waiter_takes_the_result_of_the_holder(cache: VariantCache) -> None:
    calls = []

    def slow() -> Rendered:
        calls.append(1)
        time.sleep(0.3)
        return rendered(100)

    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.fetch("k", slow, keep=lambda: True)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert sorted(v.hit for v in results) == [False, True, True, True]


def test_a_variant_stored_between_the_miss_and_the_lock_is_not_rendered_again(tmp_path: Path) -> None:
    cache = VariantCache(tmp_path / "c", 16 * MiB)
    other = VariantCache(tmp_path / "c", 16 * MiB)  # another worker, finishing just before our lock
    locking = cache.lock

    @contextmanager
    def late(key: str) -> Iterator[bool]:
        other.put(key, rendered(100, seed=7))  # stored and released: our lock comes at once
        with locking(key) as waited:
            yield waited

    cache.lock = late  # type: ignore[method-assign]
    calls = []
    variant = cache.fetch("k", lambda: calls.append(1) or rendered(100), keep=lambda: True)
    assert calls == [] and variant.hit and variant.body == rendered(100, seed=7).data


def test_damaged_inline_bytes_are_a_miss_never_served(tmp_path: Path) -> None:
    """Small variants live in the index itself; bytes an overwritten index hands back mixed from
    other pages must not reach a client. Here the stored blob is altered behind the cache's back."""
    cache = VariantCache(tmp_path / "c", 16 * MiB)
    good = rendered(5000, seed=3)
    cache.put("k", good)
    assert VariantCache(tmp_path / "c", 16 * MiB).get("k").body == good.data  # a fresh worker: from disk
    with sqlite3.connect(tmp_path / "c" / "cache.db") as index:
        (value,) = index.execute("SELECT value FROM Cache WHERE key = 'k'").fetchone()
        damaged = value[:2000] + bytes(reversed(value[2000:2100])) + value[2100:]
        index.execute("UPDATE Cache SET value = ? WHERE key = 'k'", (damaged,))
    assert VariantCache(tmp_path / "c", 16 * MiB).get("k") is None
    assert (
        VariantCache(tmp_path / "c", 16 * MiB).fetch("k", lambda: good, keep=lambda: True).body == good.data
    )


def test_a_dead_holders_lock_expires(tmp_path: Path) -> None:
    cache = VariantCache(tmp_path / "c", 16 * MiB, lock_timeout=0.5)
    with cache.lock("k") as waited:  # the holder "dies" holding it: never released in time
        assert not waited
        started = time.monotonic()
        other = VariantCache(tmp_path / "c", 16 * MiB, lock_timeout=0.5)
        variant = other.fetch("k", lambda: rendered(10), keep=lambda: True)
        assert not variant.hit
        assert 0.4 < time.monotonic() - started < 2  # waited for the timeout, then rendered
    cache.close()
    other.close()


@pytest.mark.integration
def test_a_killed_holders_lock_is_broken_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path / "c")], stdout=subprocess.PIPE, cwd=REPO
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    holder.kill()
    holder.wait()
    holder.stdout.close()
    cache = VariantCache(tmp_path / "c", 16 * MiB, lock_timeout=30)
    started = time.monotonic()
    assert not cache.fetch("k", lambda: rendered(10), keep=lambda: True).hit
    assert time.monotonic() - started < 1  # not the 30 s expiry
    cache.close()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from proxy.cache import VariantCache
cache = VariantCache(Path(sys.argv[1]), 16 << 20, lock_timeout=30)
held = cache.lock("k")
held.__enter__()
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_size_bound_holds_and_hot_entries_survive(tmp_path: Path) -> None:
    limit = 16 * MiB
    cache = VariantCache(tmp_path / "c", limit, touch_every=0)  # every hit refreshes, for the test
    hot = [f"hot{i}" for i in range(10)]
    for key in hot:
        cache.put(key, rendered(20_000, seed=hash(key) % 1000))
    rng = random.Random(7)
    for i in range(3000):
        cache.put(f"cold{i}", rendered(rng.randrange(2_000, 60_000), seed=i))
        if i % 50 == 0:
            assert all(present(cache, key) for key in hot)
            assert directory_bytes(tmp_path / "c") <= limit
    assert all(present(cache, key) for key in hot)  # recently used: never evicted
    assert not present(cache, "cold0")  # the oldest cold ones were
    stats = cache.stats()
    assert stats["entries"] < 3000 and stats["bytes"] <= limit
    cache.close()


def test_oversized_variants_are_not_stored(cache: VariantCache) -> None:
    cache.put("huge", rendered(cache.max_entry + 1))
    assert not present(cache, "huge")


def test_survives_its_directory_being_deleted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "c"
    cache = VariantCache(directory, 16 * MiB, retry_after=0)
    cache.put("a", rendered(50_000))
    shutil.rmtree(directory)
    assert not present(cache, "a")  # gone with the directory: a miss, not an error
    cache.put("b", rendered(50_000))
    assert present(cache, "b")  # recovered in a fresh directory
    assert (directory / "cache.db").exists()
    cache.close()


def test_survives_a_corrupt_index(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "c"
    cache = VariantCache(directory, 16 * MiB, retry_after=0)
    cache.put("a", rendered(100))
    cache.close()
    (directory / "cache.db").write_bytes(os.urandom(8192))
    for suffix in ("-wal", "-shm"):
        (directory / f"cache.db{suffix}").unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        cache = VariantCache(directory, 16 * MiB, retry_after=0)
        assert not present(cache, "a")
        cache.put("b", rendered(100))
        assert present(cache, "b")
    assert "rebuilding" in caplog.text
    cache.close()


def test_garbage_written_under_an_open_cache(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "c"
    cache = VariantCache(directory, 16 * MiB, retry_after=0)
    for i in range(50):
        cache.put(f"k{i}", rendered(1000, seed=i))
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        with open(directory / "cache.db", "r+b") as index:
            index.write(os.urandom(os.path.getsize(directory / "cache.db")))
        for i in range(50):  # every call answers: a hit, a miss, never an exception
            variant = cache.get(f"k{i}")
            assert variant is None or variant.body == bytes(rendered(1000, seed=i).data)
        cache.put("new", rendered(100))
        for _ in range(3):
            if not present(cache, "new"):
                cache.put("new", rendered(100))
        assert present(cache, "new")
    cache.close()


def test_unusable_directory_serves_uncached_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "c"
    blocker.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        cache = VariantCache(blocker, 16 * MiB, retry_after=0)
        for _ in range(5):
            variant = cache.fetch("k", lambda: rendered(100), keep=lambda: True)
            assert not variant.hit and variant.length == 100
    assert caplog.text.count("unavailable") == 1
    blocker.unlink()
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        cache.put("k", rendered(100))
        assert present(cache, "k")
    assert "available again" in caplog.text
    cache.close()


def _full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_write_that_fails_for_space_culls_and_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a failure: the cache stays up, holds less, and the write that failed is stored.
    (On a real full disk, in test_full_disk.py; here the failure is injected once, on a disk of
    the cache's own: another process's writes to a shared one would move the bound meanwhile.)"""
    real = os.statvfs(tmp_path)

    def own_disk(path: object, capacity: int = 32 * MiB) -> os.statvfs_result:
        free = max(0, capacity - directory_bytes(tmp_path / "c"))
        fields = (real.f_bsize, 1, capacity, free, free, *tuple(real)[5:])  # f_frsize 1: in bytes
        return os.statvfs_result(fields)

    monkeypatch.setattr(os, "statvfs", own_disk)
    cache = VariantCache(tmp_path / "c", 16 * MiB, retry_after=0)
    for i in range(40):
        cache.put(f"k{i}", rendered(100_000, seed=i))
    store = diskcache.Cache.set
    failures = []

    def full_once(self: diskcache.Cache, key: str, *args: object, **kwargs: object) -> object:
        if key == "new" and not failures:
            failures.append(key)
            _full()
        return store(self, key, *args, **kwargs)

    monkeypatch.setattr(diskcache.Cache, "set", full_once)
    with caplog.at_level(logging.WARNING, logger="proxy.cache"):
        cache.put("new", rendered(100_000, seed=99))
    assert failures == ["new"] and present(cache, "new")
    assert not present(cache, "k0") and present(cache, "k39")  # the oldest made room
    health = cache.health()
    assert health["state"] == "degraded" and health["effective"] < 16 * MiB  # type: ignore[operator]
    assert "No space left on device" in caplog.text and "unavailable" not in caplog.text
    cache.close()


def test_a_lock_with_no_room_is_not_waited_for(cache: VariantCache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diskcache.Cache, "add", _full)  # even after culling
    started = time.monotonic()
    variant = cache.fetch("k", lambda: rendered(100), keep=lambda: True)
    assert not variant.hit and time.monotonic() - started < 0.5  # not the 2 s lock timeout
    assert cache.health()["state"] == "degraded"  # not down
    monkeypatch.undo()
    # The free space the failure disproved (all of it, here) is not counted on for DISTRUST
    # seconds; once it is again, the cache is back at its bound.
    monkeypatch.setattr("proxy.cache.store.DISTRUST", 0.0)
    cache.put("k", rendered(100))
    assert present(cache, "k") and cache.health()["state"] == "ok"


def test_stats_and_clear(cache: VariantCache) -> None:
    cache.fetch("a", lambda: rendered(100), keep=lambda: True)
    cache.fetch("a", lambda: rendered(100), keep=lambda: True)
    cache.get("absent")
    stats = cache.stats()
    assert stats["entries"] == 1 and stats["renders"] == 1
    assert stats["hits"] == 1 and stats["misses"] == 2
    assert stats["limit"] == 16 * MiB and stats["bytes"] > 0
    assert cache.clear() >= 1
    assert cache.stats()["entries"] == 0


@pytest.mark.slow
def test_a_hit_refreshes_its_entry_at_most_every_touch_interval(tmp_path: Path) -> None:
    cache = VariantCache(tmp_path / "c", 16 * MiB, touch_every=0.2)
    cache.put("read", rendered(40_000, seed=1))
    cache.put("unread", rendered(40_000, seed=2))
    time.sleep(0.3)
    assert present(cache, "read")  # older than the interval: this hit moves it to the young end
    for i in range(800):  # ~32 MB through a 16 MB cache: everything older is evicted
        cache.put(f"cold{i}", rendered(40_000, seed=100 + i))
        if i % 100 == 0:
            time.sleep(0.25)
            assert present(cache, "read")
    assert present(cache, "read")
    assert not present(cache, "unread")
    cache.close()


def test_small_hits_are_kept_in_memory_until_gone_from_disk(tmp_path: Path) -> None:
    cache = VariantCache(tmp_path / "c", 16 * MiB, touch_every=0.2, memory=1 * MiB)
    small, large = rendered(100_000, seed=1), rendered(MEMORY_ENTRY + 1, seed=2)
    cache.put("small", small)
    cache.put("large", large)
    disk = diskcache.Cache(str(tmp_path / "c"))  # another worker's view of the same directory
    disk.delete("small")
    disk.delete("large")
    variant = cache.get("small")  # from memory: the disk is not asked
    assert variant is not None and variant.hit and variant.body == small.data
    assert cache.get("large") is None  # too large to remember: the disk is asked, and has none
    time.sleep(0.3)  # due for a touch, which finds the entry gone: memory lets it go too
    assert cache.get("small") is None
    disk.close()
    cache.close()


def test_hits_read_from_disk_are_remembered(tmp_path: Path) -> None:
    writer = VariantCache(tmp_path / "c", 16 * MiB)  # another worker rendered it
    writer.put("k", rendered(100_000, seed=3))  # over 32 KB: diskcache keeps it as a file
    cache = VariantCache(tmp_path / "c", 16 * MiB, memory=1 * MiB)
    first = cache.get("k")
    assert first is not None and first.body == rendered(100_000, seed=3).data  # read whole, not streamed
    for entry in (tmp_path / "c").iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)  # the value files; the index still lists the entry
    second = cache.get("k")
    assert second is not None and second.body == first.body  # from memory: the file was not needed
    writer.close()
    cache.close()


def test_memory_holds_its_bound_least_recently_used_first_out(tmp_path: Path) -> None:
    cache = VariantCache(tmp_path / "c", 16 * MiB, memory=300_000)
    for name in ("a", "b", "c"):
        cache.put(name, rendered(100_000, seed=ord(name)))
    assert cache.get("a") is not None  # "a" is now the most recently used
    cache.put("d", rendered(100_000, seed=4))  # 400 KB: the least recently used, "b", goes
    disk = diskcache.Cache(str(tmp_path / "c"))
    for name in "abcd":
        disk.delete(name)
    assert [cache.get(name) is not None for name in "abcd"] == [True, False, True, True]
    disk.close()
    cache.close()

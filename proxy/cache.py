"""The disk cache of rendered variants: key, get, put, a per-key lock, statistics.

One ``diskcache.Cache`` (SQLite index, values over 32 KB as files) is shared by
every worker of an instance. Choices, each measured (figures in the README):

- Least-recently-*touched* eviction, not diskcache's least-recently-used: LRU
  writes an access time on every hit, and with two workers that write (and its
  wait for SQLite's write lock) cut hit throughput from ~3,600 to ~2,100
  requests/s. Instead an entry's expiry is its last touch plus ``HORIZON``, a
  hit re-touches it at most once per ``touch_every`` seconds, and eviction takes
  the smallest expiry first: LRU to within a minute, with read-only hits.
  Hit and miss counts are likewise kept per worker and added to the shared
  totals at most once a second.
- One shard, not a ``FanoutCache``: two to four workers barely contend for
  SQLite's write lock once hits do not write, and shards would split the size
  limit (a shard could then be smaller than one large variant) and turn lock
  timeouts into misses.
- The bound is on the directory: ``size_limit`` leaves room for SQLite's
  write-ahead log, which lives beside the index, and a put that leaves the
  volume over the limit culls until it is under, because diskcache's own
  eviction removes only ten entries per write.
- Small variants are also kept in each worker's memory (``memory`` bytes, least recently
  used first out, none over ``MEMORY_ENTRY``): a hit on one costs a dictionary lookup, not
  an SQLite query and a file open, which gave 1.16x the hit throughput of the same server
  without it. Keys name the original's version, so a remembered variant can never be stale;
  it still refreshes its disk entry's touch, and is forgotten once that entry is gone
  (evicted or cleared), at most ``touch_every`` seconds later.
- Values are written to a file before their row is committed, so a worker
  killed mid-write leaves at most an orphan file, never a row that points at a
  partial value. Values under ``INLINE`` bytes live in the index itself, where an
  index damaged under a running server (overwritten, half-restored) can hand back
  bytes from mixed pages: those carry a CRC-32 of their key and bytes, checked on
  every read from disk (14 us for 32 KB), and a damaged one is a miss, never served.
- Entries are tagged with their original (purge.py's ``o-`` tag; the type of a variant is read
  from its first bytes, a 12-byte read) and diskcache indexes tags, so a purge removes every
  variant and the reduced copy of one original without a scan. A purge also touches the
  ``purged`` file in the directory, which every worker looks at no more than every
  ``EPOCH_CHECK`` seconds, emptying its memory tier when it changed.
- A full disk is not a failure. When the cache's file system cannot hold the bound (a disk
  smaller than it, or shared), the cache holds less: an *effective* bound, what it holds plus
  the free space, less a headroom of a sixteenth of that, measured on writes (one
  ``statvfs``, every ``SPACE_CHECK`` seconds, and every write while under the bound, never on a
  hit), so it shrinks before the disk is full and grows back when space returns. A write that
  fails for space anyway (ENOSPC, SQLite's SQLITE_FULL) lowers the bound below what the cache
  holds, culls, and is tried once more. Marking the cache down instead made a cache that had
  outgrown its disk no cache at all, for good. The headroom is what lets the two caches on one
  disk (variants, and remote originals' copies) share it: whichever writes takes from the
  headroom, and the other gives back its oldest entries on its next write. A file that a
  failed write leaves (diskcache keeps a partial one, or one whose row was not committed) is
  removed, since nothing would ever remove it later.
- The cache accelerates and never fails a request: any other error from SQLite or the
  file system (directory deleted, read-only, index corrupt) is logged once, the
  request is served uncached, and the cache is reopened (rebuilt, if its index is
  unreadable) a few seconds later.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import diskcache

from .formats import WEBP_EFFORT, mime_of
from .gate import alive
from .keys import PIPELINE_VERSION
from .metrics import CACHE_DEGRADED, CACHE_EFFECTIVE, EVICTIONS
from .params import ImageParams
from .pipeline import Rendered
from .sources import Source

log = logging.getLogger(__name__)
T = TypeVar("T")

WAL_PAGES = 256  # SQLite checkpoints its write-ahead log at this many pages...
PAGE_SIZE = 4096  # ...of this size,
RESERVE = 2 * WAL_PAGES * PAGE_SIZE + 64 * 1024  # so this much of the bound is kept for log and shm.
MIN_SIZE = 4 * RESERVE
HORIZON = 30 * 86400  # seconds an untouched variant is kept at most
LOCK_PREFIX = "lock:"
STAT_PREFIX = "stat:"
SEEN_PREFIX = "seen:"
KIND_PREFIX = "kind|"
BOOKKEEPING = (LOCK_PREFIX, STAT_PREFIX, SEEN_PREFIX, KIND_PREFIX)  # not counted as entries
RENDERS, HITS, MISSES = (STAT_PREFIX + name for name in ("renders", "hits", "misses"))
POLICY = "least-recently-touched"
MEMORY_ENTRY = 256 * 1024  # larger variants stream from their file (sendfile) and stay on disk
EPOCH_CHECK = 0.5  # seconds between looks at the purge marker: how stale a memory tier may be
PURGED = "purged"  # the marker file, touched by every purge

# diskcache's policies are rows of this table; ours culls by expiry and writes nothing on a hit.
# Locks (expiring within the hour) and counters (never expiring) are never culled.
diskcache.core.EVICTION_POLICY[POLICY] = {
    "init": None,  # diskcache already indexes expire_time
    "get": None,
    "cull": "SELECT {fields} FROM Cache WHERE expire_time > {now} + 3600 ORDER BY expire_time LIMIT ?",
}
_FAILURES = (sqlite3.Error, OSError, diskcache.Timeout)
INLINE = 1 << 15  # values under this many bytes are kept in the index (diskcache's disk_min_file_size)
SEAL = 4  # bytes of the CRC-32 after an inline value
SPACE_CHECK = 2.0  # seconds between looks at the free space, on writes, while at the configured bound
HEADROOM = 16  # a cache short of space leaves this fraction of the space it could use free
DISTRUST = 600.0  # seconds free space that a failed write disproved (a quota) is not counted on


def _out_of_space(error: BaseException) -> bool:
    """Whether ``error`` says the file system is full (or the quota spent), not that it failed."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    code = getattr(error, "sqlite_errorcode", 0)  # none on an error the sqlite3 module raises itself
    return isinstance(error, sqlite3.Error) and code & 0xFF == sqlite3.SQLITE_FULL


class _Disk(diskcache.Disk):  # type: ignore[misc]
    """diskcache's value files, less the one a failed write leaves: diskcache keeps a file
    written partly (disk full) and one whose row was not committed, and no row ever names
    either, so nothing would remove them."""

    def __init__(self, directory: str, **settings: object) -> None:
        super().__init__(directory, **settings)
        self._made = threading.local()  # this thread's file of the write under way

    def filename(
        self, key: object = diskcache.core.UNKNOWN, value: object = diskcache.core.UNKNOWN
    ) -> tuple[str, str]:
        name, path = super().filename(key, value)
        self._made.name = name
        return name, path

    @contextmanager
    def unmade_on_failure(self) -> Iterator[None]:
        """Remove the file made for a write that raises in this block (a ``Cache.set``: once
        committed, nothing in it raises)."""
        self._made.name = None
        try:
            yield
        except BaseException:
            if self._made.name is not None:
                self.remove(self._made.name)  # also its emptied directories; never raises
            raise


def _seal(key: str, data: bytes) -> bytes:
    return zlib.crc32(data, zlib.crc32(key.encode())).to_bytes(SEAL, "little")


def _unsealed(key: str, value: bytes) -> bytes | None:
    """An inline value's bytes, or None if they are not what was stored under ``key``."""
    data = value[:-SEAL]
    return data if len(value) >= SEAL and value[-SEAL:] == _seal(key, data) else None


@dataclass
class Variant:
    """A rendered image: its type, its length, and its bytes or an open file of them."""

    mime: str
    length: int
    body: bytes | BinaryIO
    hit: bool


def variant_key(source: Source, params: ImageParams, target: str, webp_effort: int = WEBP_EFFORT) -> str:
    """Everything that changes the bytes: pipeline, original and its version, transform, format.

    The requested ``fmt`` is left out and the format produced put in (formats.resolve), so
    ``fmt=webp`` and ``fmt=auto`` answered with WebP are one variant, as are no ``fmt`` and
    ``fmt=jpeg`` for a JPEG original.
    """
    if target == "webp" and webp_effort != WEBP_EFFORT:  # other bytes: another variant, another ETag
        target += f"@m{webp_effort}"
    return "|".join((PIPELINE_VERSION, source.id, source.version, params.transform, target))


def kind_key(source: Source) -> str:
    """The key of an original version's header kind (app.declared_kind)."""
    return KIND_PREFIX + "|".join((PIPELINE_VERSION, source.id, source.version))


def copy_key(source: Source) -> str:
    """The key of an original's reduced copy (intermediate.py): one per version."""
    return "|".join(("copy", PIPELINE_VERSION, source.id, source.version))


class VariantCache:
    """A fail-safe, size-bounded, cross-process LRU of variants."""

    def __init__(
        self,
        directory: Path,
        size: int,
        lock_timeout: float = 30.0,
        retry_after: float = 5.0,
        touch_every: float = 60.0,
        memory: int = 0,
        files_only: bool = False,
    ) -> None:
        if size < MIN_SIZE:
            raise ValueError(f"cache size {size} is below the minimum of {MIN_SIZE} bytes")
        self.directory = directory
        self.size_limit = size - RESERVE
        self.max_entry = self.size_limit // 8  # larger variants would evict too much to be worth it
        self.lock_timeout = lock_timeout
        self.retry_after = retry_after
        self.touch_every = touch_every
        self.memory = memory
        self._files_only = files_only  # every value in a file of its own, even a small one
        self._hot: OrderedDict[str, tuple[str, bytes, float]] = OrderedDict()  # key: mime, body, expiry
        self._hot_bytes = 0
        self._state = threading.RLock()  # guards opening, closing, counts and memory, across threads
        self._counts = {HITS: 0, MISSES: 0}  # not yet added to the shared totals
        self._flushed = time.monotonic()
        self._later: threading.Timer | None = None  # a flush due in a second
        self._cache: diskcache.Cache | None = None
        self._index: int | None = None  # a descriptor of the open index, to notice its deletion
        self._down_since: float | None = None
        self._checked = 0.0
        self._effective = self.size_limit  # the bound for now: lower while the disk is short of space
        self._space_checked = float("-inf")
        self._disproved = (0, 0.0)  # free space a failed write found missing, and when
        label = "copies" if files_only else "variants"  # the copies' cache is the only files-only one
        self._gauges = (CACHE_EFFECTIVE.labels(label), CACHE_DEGRADED.labels(label))
        self._gauges[0].set(size)
        self._gauges[1].set(0)
        self._marker = directory / PURGED
        self._epoch = self._read_epoch()  # the marker's stamp when last looked at
        self._epoch_checked = time.monotonic()
        self._open()

    # --- the operations the view uses ---------------------------------------------------

    def fetch(
        self, key: str, produce: Callable[[], Rendered], keep: Callable[[], bool], tag: str | None = None
    ) -> Variant:
        """The cached variant, or one rendered by ``produce`` once across all workers and stored
        under ``tag`` (its original's, for purges).

        ``keep`` is asked after rendering whether the result may be stored (the original
        may have been replaced meanwhile); errors from ``produce`` propagate and store nothing.
        """
        variant = self.get(key)
        if variant is not None:
            return variant
        with self.lock(key):
            # Look again even if the lock came at once: its last holder may have stored the
            # variant between our miss and our lock (``in`` counts no second miss).
            stored = self._guard(lambda cache: key in cache, False)
            variant = self.get(key) if stored else None
            if variant is not None:
                return variant
            rendered = produce()
            self._guard(lambda cache: cache.incr(RENDERS), None)
            if keep():
                self.put(key, rendered, tag)
            return Variant(rendered.format.mime, len(rendered.data), rendered.data, hit=False)

    def get(self, key: str) -> Variant | None:
        hot = self._recall(key)
        if hot is not None:
            return hot
        found = self._guard(lambda cache: cache.get(key, read=True, expire_time=True), None)
        body, expires = found if found is not None else (None, None)
        if isinstance(body, bytes):
            body = _unsealed(key, body)
        self._count(MISSES if body is None else HITS)
        if body is None:
            return None
        mime = mime_of(body[:12] if isinstance(body, bytes) else os.pread(body.fileno(), 12, 0))
        if mime is None:  # not a variant (a blob or a record asked for by mistake)
            if not isinstance(body, bytes):
                body.close()
            return None
        if expires is not None and expires - time.time() < HORIZON - self.touch_every:
            expires = time.time() + HORIZON if self._touch(key) else None
        if not isinstance(body, bytes):
            length = os.fstat(body.fileno()).st_size
            if not self._fits(length):
                return Variant(mime, length, body, hit=True)
            with body:
                body = body.read()
        if expires is not None:
            self._remember(key, mime, body, expires)
        return Variant(mime, len(body), body, hit=True)

    def put(self, key: str, rendered: Rendered, tag: str | None = None) -> None:
        if self._store(key, rendered.data, tag):
            self._remember(key, rendered.format.mime, rendered.data, time.time() + HORIZON)

    # --- purges (purge.py) ------------------------------------------------------------------

    def purge(self, tag: str) -> int:
        """Remove every entry stored under ``tag``, here and, within EPOCH_CHECK seconds, from
        every worker's memory tier; the number removed."""
        removed = int(self._guard(lambda cache: cache.evict(tag, retry=True), 0))
        try:
            self._marker.touch()
            os.utime(self._marker, ns=(time.time_ns(), time.time_ns()))  # a new stamp, even within a tick
        except OSError as error:
            log.warning("could not mark the purge in %s: %s", self._marker, error)
        self._clear_memory()
        return removed

    def epoch(self) -> int:
        """The purge marker's stamp, looked at no more than every EPOCH_CHECK seconds: changes
        after any purge, by any process. Empties this worker's memory tier when it changed."""
        now = time.monotonic()
        if now - self._epoch_checked >= EPOCH_CHECK:
            self._epoch_checked = now
            stamp = self._read_epoch()
            if stamp != self._epoch:
                self._epoch = stamp
                self._clear_memory()
        return self._epoch

    def _read_epoch(self) -> int:
        try:
            return os.stat(self._marker).st_mtime_ns
        except OSError:
            return 0

    def _clear_memory(self) -> None:
        with self._state:
            self._hot.clear()
            self._hot_bytes = 0

    # --- the in-memory tier -------------------------------------------------------------

    def _recall(self, key: str) -> Variant | None:
        self._check()  # hits from memory must not hide a deleted index for longer than misses do
        self.epoch()  # nor a purge
        with self._state:
            hot = self._hot.get(key)
            if hot is None:
                return None
            self._hot.move_to_end(key)
        mime, body, expires = hot
        if expires - time.time() < HORIZON - self.touch_every:  # due for a touch, as on disk
            if not self._touch(key):
                self._forget(key)  # evicted or cleared on disk: hits go back to the disk
                return None
            with self._state:
                if key in self._hot:
                    self._hot[key] = (mime, body, time.time() + HORIZON)
        self._count(HITS)
        return Variant(mime, len(body), body, hit=True)

    def _fits(self, length: int) -> bool:
        """Whether a variant of ``length`` bytes is one the memory tier keeps (never when off)."""
        return self.memory > 0 and length <= min(MEMORY_ENTRY, self.memory)

    def _remember(self, key: str, mime: str, body: bytes, expires: float) -> None:
        if not self._fits(len(body)):
            return
        with self._state:
            old = self._hot.pop(key, None)
            self._hot_bytes += len(body) - (len(old[1]) if old else 0)
            self._hot[key] = (mime, body, expires)
            while self._hot_bytes > self.memory:
                _, (_, dropped, _) = self._hot.popitem(last=False)
                self._hot_bytes -= len(dropped)

    def _forget(self, key: str) -> None:
        with self._state:
            old = self._hot.pop(key, None)
            if old is not None:
                self._hot_bytes -= len(old[1])

    def _touch(self, key: str) -> bool:
        """Refresh the entry's place in eviction order; False if it is no longer on disk."""
        return bool(self._guard(lambda cache: cache.touch(key, expire=HORIZON), True))

    # --- reduced copies of originals (intermediate.py) -----------------------------------

    def get_blob(self, key: str) -> bytes | None:
        def read(cache: diskcache.Cache) -> bytes | None:
            value = cache.get(key, read=True)
            if value is None or isinstance(value, bytes):
                return None if value is None else _unsealed(key, value)
            with value:
                return bytes(value.read())

        return self._guard(read, None)

    def put_blob(self, key: str, data: bytes, tag: str | None = None) -> None:
        """Store ``data``; counted as a render (for the copies of remote originals: a fetch)."""
        self._store(key, data, tag)
        self._guard(lambda cache: cache.incr(RENDERS), None)

    def open_blob(self, key: str, count: bool = True) -> BinaryIO | None:
        """An open file of the value's bytes (values of a ``files_only`` cache), or None; counted
        as a hit or a miss unless ``count`` is off (a look that is not a use)."""

        def read(cache: diskcache.Cache) -> BinaryIO | None:
            value = cache.get(key, read=True, retry=True)  # contention must not look like absence
            return value if value is None or not isinstance(value, bytes) else None

        found = self._guard(read, None)
        if count:
            self._count(MISSES if found is None else HITS)
        return found

    # --- small records (remote originals' metadata, remembered refusals) ------------------

    def get_value(self, key: str) -> object:
        """The record, or None; a busy index is waited for, since absence would mean a refetch."""

        def read(cache: diskcache.Cache) -> object:
            try:
                return cache.get(key, retry=True)
            except _FAILURES:
                raise
            except Exception:  # a damaged index hands back any bytes, and unpickling them raises anything
                return None

        return self._guard(read, None)

    def set_value(self, key: str, value: object, expire: float = HORIZON) -> None:
        """Store a record, waiting out a busy index: a record lost would mean a second fetch."""
        self._guard(lambda cache: cache.set(key, value, expire=expire, retry=True), None)

    def delete(self, key: str) -> None:
        self._guard(lambda cache: cache.delete(key), None)

    def first_sight(self, key: str) -> bool:
        """True the first time ``key`` is asked about (within HORIZON); records the sighting."""
        return bool(self._guard(lambda cache: cache.add(SEEN_PREFIX + key, 1, expire=HORIZON), True))

    def _store(self, key: str, data: bytes, tag: str | None) -> bool:
        """Whether ``data`` was stored."""
        if len(data) > self.max_entry:
            return False
        inline = not self._files_only and len(data) + SEAL < INLINE
        value = data + _seal(key, data) if inline else data

        def store(cache: diskcache.Cache) -> bool:
            if self._effective < self.size_limit or time.monotonic() - self._space_checked >= SPACE_CHECK:
                self._measure(cache)
            if len(value) > self._effective:  # storing it would evict everything, itself included
                return False
            self._cull(cache, room=len(value))
            # A variant not stored for contention is rendered again later; a copy of a remote
            # original would be fetched again, so the copies' cache waits the contention out.
            with cache.disk.unmade_on_failure():
                cache.set(key, value, tag=tag, expire=HORIZON, retry=self._files_only)
            return True

        return self._guard(store, False, need=len(value))

    @contextmanager
    def lock(self, key: str, timeout: float | None = None) -> Iterator[bool]:
        """Hold the variant's lock across workers; yields True if another worker held it first.

        The lock records its holder's pid, and a waiter breaks it as soon as that process is
        gone (a worker killed mid-render). It also expires after ``lock_timeout``, after which a
        waiter goes on without it rather than hang; ``timeout`` waits less (0: not at all, so
        True then means "not held"). Waiters poll with ``in``, which neither touches LRU order
        nor counts as a miss.
        """
        name = LOCK_PREFIX + key
        deadline = time.monotonic() + (self.lock_timeout if timeout is None else timeout)
        owned = self._acquire(name)
        waited = not owned
        delay = 0.002
        while owned is False and time.monotonic() < deadline:
            if self._down_since is not None or self._guard(lambda cache: key in cache, False):
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            owned = self._acquire(name)
        try:
            yield waited
        finally:
            if owned:
                self._guard(lambda cache: cache.delete(name), None)

    def _acquire(self, name: str) -> bool | None:
        """True if taken, False if another worker holds it, None if the cache cannot say (down,
        or no room for the lock even after culling): then nobody waits for it."""

        def attempt(cache: diskcache.Cache) -> bool:
            try:
                with cache.transact():
                    if cache.add(name, os.getpid(), expire=self.lock_timeout):
                        return True
                    try:
                        holder = cache.incr(name, 0, default=None)  # reads without counting a hit
                    except KeyError:
                        return False  # released a moment ago: the next attempt takes it
                    if alive(holder):
                        return False
                    cache.set(name, os.getpid(), expire=self.lock_timeout)  # its holder died
                    return True
            except diskcache.Timeout:
                return False  # contention: the next attempt may take it

        return self._guard(attempt, None)

    def writable(self) -> bool:
        """Whether a write succeeds now (for /readyz); a failure is handled like any other."""
        return bool(self._guard(lambda cache: cache.incr(RENDERS, 0) is not None, False))

    # --- for operators --------------------------------------------------------------------

    def health(self) -> dict[str, object]:
        """The cache's state (ok, degraded: held under its bound for lack of space, or down), its
        configured bound and its effective one, in bytes; from memory, no I/O (for /healthz)."""
        if self._down_since is not None:
            state = "down"
        else:
            state = "degraded" if self._effective < self.size_limit else "ok"
        return {"state": state, "bound": self.size_limit + RESERVE, "effective": self._effective + RESERVE}

    def stats(self) -> dict[str, int]:
        self._flush()

        def collect(cache: diskcache.Cache) -> dict[str, int]:
            entries = sum(1 for k in cache.iterkeys() if not k.startswith(BOOKKEEPING))
            return {
                "entries": entries,
                "bytes": directory_bytes(self.directory),
                "limit": self.size_limit + RESERVE,
                "effective": self._effective + RESERVE,
                **{name[len(STAT_PREFIX) :]: int(cache.get(name, 0)) for name in (HITS, MISSES, RENDERS)},
            }

        return self._guard(collect, {})

    def clear(self) -> int:
        self._clear_memory()
        return int(self._guard(lambda cache: cache.clear(), 0))

    def close(self) -> None:
        self._flush()
        with self._state:
            if self._cache is not None:
                self._cache.close()
            if self._index is not None:
                os.close(self._index)
            self._cache = self._index = None

    # --- counters -------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._state:
            self._counts[name] += 1
            due = time.monotonic() - self._flushed > 1.0
            later = not due and self._later is None
            if later:  # counted after a flush: make sure it is added even if no request follows
                self._later = threading.Timer(1.0, self._flush)
                self._later.daemon = True
        if due:
            self._flush()
        elif later:
            assert self._later is not None
            self._later.start()

    def _flush(self) -> None:
        """Add this worker's counts to the shared totals: one write a second, not one per hit, and
        a second after the last one at the latest, so an idle worker's counts reach cache stats."""
        with self._state:
            self._later = None
            self._flushed = time.monotonic()
            counts, self._counts = self._counts, dict.fromkeys(self._counts, 0)
            cache = self._cache if self._down_since is None else None
        if cache is not None and any(counts.values()):
            try:
                with cache.transact():
                    for name, count in counts.items():
                        cache.incr(name, count)
            except _FAILURES:
                pass  # statistics are best effort; the next operation reports a broken cache

    # --- failure handling -----------------------------------------------------------------

    def _guard(self, operation: Callable[[diskcache.Cache], T], fallback: T, need: int = 0) -> T:
        """Run ``operation`` on the cache; on any storage failure, log once and return ``fallback``.

        One that fails for lack of space (``need`` bytes, if known) is run once more after
        culling, and a second such failure returns ``fallback`` too, with the cache still up.
        """
        self._check()
        cache = self._cache
        if cache is None or self._down_since is not None:
            return fallback
        try:
            try:
                return operation(cache)
            except _FAILURES as error:
                if not _out_of_space(error):
                    raise
                self._make_room(cache, need, error)
                return operation(cache)
        except diskcache.Timeout:
            return fallback  # contention, not failure: this request goes uncached
        except _FAILURES as error:
            if not _out_of_space(error):
                with self._state:
                    self._fail(error)
            return fallback

    # --- disk space -----------------------------------------------------------------------

    def _measure(
        self, cache: diskcache.Cache, short: int | None = None, error: BaseException | None = None
    ) -> None:
        """Set the effective bound from the free space on the cache's file system: what the
        cache holds, plus what is free, less the headroom; the configured bound at most.

        ``short`` is the size of a write that just failed for space (``error``): whatever the
        free space says, that much more must be made free, and the free space that the write
        did not find (a quota ``statvfs`` does not show) is not counted on for a while.
        """
        stat = os.statvfs(self.directory)
        free, disk = stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize
        held = int(cache.volume())
        with self._state:
            now = self._space_checked = time.monotonic()
            if short is not None:
                self._disproved = (max(0, free - short), now)
            disproved, since = self._disproved
            usable = free - disproved if now - since < DISTRUST else free
            room = held + max(0, usable)  # what the cache could hold, if nothing were left free
            # Less RESERVE, the room for SQLite's log, as in the configured bound: in bytes of the
            # directory, the effective bound is then what it holds and what is free, less headroom.
            headroom = room // HEADROOM + (short or 0)
            effective = max(0, min(self.size_limit, room - headroom - RESERVE))
            if effective < self.size_limit <= self._effective:
                log.warning(
                    "cache in %s: %s for its %d bytes (%s); holding at most %d until space returns",
                    self.directory,
                    os.strerror(errno.ENOSPC),
                    self.size_limit + RESERVE,
                    error if error is not None else f"{free} of {disk} bytes free",
                    effective + RESERVE,
                )
            elif self._effective < self.size_limit <= effective:
                log.warning("cache in %s has the disk space for its bound again", self.directory)
            self._effective = effective
            self._gauges[0].set(effective + RESERVE)
            self._gauges[1].set(int(effective < self.size_limit))

    def _make_room(self, cache: diskcache.Cache, need: int, error: BaseException) -> None:
        """After a write failed for space: lower the effective bound and cull down to it. A COMMIT
        that failed may leave its transaction open (diskcache rolls back only earlier failures)."""
        if cache._con.in_transaction:  # this thread's connection; diskcache has no public way to ask
            cache._sql("ROLLBACK")
        self._measure(cache, short=need, error=error)
        self._cull(cache)

    def _cull(self, cache: diskcache.Cache, room: int = 0) -> None:
        """Evict the least recently touched entries until ``room`` more bytes fit under the
        effective bound. Before a write, not after it: diskcache culls ten entries at a time, and
        a cache of a few large ones (a small disk, the copies) would lose the new one too.
        """
        if cache.volume() + room > self._effective:
            cache.size_limit = self._effective - room  # what cull() evicts down to; reset() would persist it
            EVICTIONS.inc(cache.cull())

    def _check(self) -> None:
        """Every ``retry_after`` seconds: reopen a cache that failed or whose index was deleted."""
        now = time.monotonic()
        if now - self._checked > self.retry_after:
            with self._state:
                if now - self._checked > self.retry_after:  # not already done by another thread
                    self._checked = now
                    if self._down_since is not None or not self._index_is_current():
                        self._open()

    def _open(self) -> None:
        self.close()
        try:
            self._cache = self._connect()
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):
                return self._fail(error)
            log.warning("cache index in %s is unreadable (%s); rebuilding it", self.directory, error)
            for suffix in ("", "-wal", "-shm"):
                (self.directory / f"cache.db{suffix}").unlink(missing_ok=True)
            try:
                self._cache = self._connect()
            except _FAILURES as again:
                return self._fail(again)
        except _FAILURES as error:
            return self._fail(error)
        try:
            self._index = os.open(self.directory / "cache.db", os.O_RDONLY)
        except OSError as error:
            return self._fail(error)
        if self._down_since is not None:
            log.warning("cache in %s is available again", self.directory)
        self._down_since = None

    def _connect(self) -> diskcache.Cache:
        cache = diskcache.Cache(
            str(self.directory),
            size_limit=self.size_limit,
            eviction_policy=POLICY,
            cull_limit=0,  # we cull after each write instead, all the way under the bound, and count it
            timeout=1,  # a hit never waits long on SQLite's write lock; it goes uncached instead
            sqlite_wal_autocheckpoint=WAL_PAGES,
            sqlite_journal_size_limit=WAL_PAGES * PAGE_SIZE,
            sqlite_mmap_size=0,  # mmap turns an index truncated under us into SIGBUS, a dead worker
            tag_index=True,  # purges find an original's entries by their tag
            disk=_Disk,
            **({"disk_min_file_size": 0} if self._files_only else {}),
        )
        try:
            cache.incr(RENDERS, 0)  # a write: a read-only index fails here, not on a later request
        except _FAILURES as error:
            if _out_of_space(error):
                return cache  # readable, and the next write makes room
            cache.close()
            raise
        except BaseException:
            cache.close()
            raise
        return cache

    def _index_is_current(self) -> bool:
        """Whether the index we hold open is still in the directory: not deleted, not replaced.

        SQLite keeps working on an unlinked file, so a deleted cache directory would otherwise
        go unnoticed; an inode number alone can be reused by the new file at once.
        """
        return self._index is not None and os.fstat(self._index).st_nlink > 0

    def _fail(self, error: BaseException) -> None:
        if self._down_since is None:
            log.warning(
                "cache in %s unavailable (%s); serving uncached until it recovers", self.directory, error
            )
            self._down_since = time.monotonic()
        self.close()


def directory_bytes(directory: Path) -> int:
    """Bytes in all files under ``directory``: what the size bound is about.

    A cache of its own below it (remote originals' copies) has its own bound and is left out.
    """
    total = 0
    for root, subdirectories, files in os.walk(directory):
        subdirectories[:] = [name for name in subdirectories if not (Path(root, name) / "cache.db").exists()]
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total

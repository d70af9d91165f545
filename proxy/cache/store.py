"""The storage under a cache: one diskcache directory, sealed, bounded, and never failing a request.

One ``diskcache.Cache`` (SQLite index, values over 32 KB as files) is shared by every worker
of an instance. Choices, each measured (figures: docs/performance.md):

- Least-recently-*touched* eviction, not diskcache's least-recently-used: LRU
  writes an access time on every hit, and with two workers that write (and its
  wait for SQLite's write lock) cut hit throughput from ~3,600 to ~2,100
  requests/s. Instead an entry's expiry is its last touch plus ``HORIZON``, a
  hit re-touches it at most once per ``touch_every`` seconds (the cache's), and
  eviction takes the smallest expiry first: LRU to within a minute, with read-only hits.
- One shard, not a ``FanoutCache``: two to four workers barely contend for
  SQLite's write lock once hits do not write, and shards would split the size
  limit (a shard could then be smaller than one large variant) and turn lock
  timeouts into misses.
- The bound is on the directory: ``size_limit`` leaves room for SQLite's
  write-ahead log, which lives beside the index, and a put that leaves the
  volume over the limit culls until it is under, because diskcache's own
  eviction removes only ten entries per write.
- Values are written to a file before their row is committed, so a worker
  killed mid-write leaves at most an orphan file, never a row that points at a
  partial value. Values under ``INLINE`` bytes live in the index itself, where an
  index damaged under a running server (overwritten, half-restored) can hand back
  bytes from mixed pages: those carry a CRC-32 of their key and bytes, checked on
  every read from disk (14 us for 32 KB), and a damaged one is a miss, never served.
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import diskcache

from ..metrics import CACHE_DEGRADED, CACHE_EFFECTIVE, EVICTIONS
from .counters import RENDERS, Counters

log = logging.getLogger("proxy.cache")  # the package's logger, as operators know it
T = TypeVar("T")

WAL_PAGES = 256  # SQLite checkpoints its write-ahead log at this many pages...
PAGE_SIZE = 4096  # ...of this size,
RESERVE = 2 * WAL_PAGES * PAGE_SIZE + 64 * 1024  # so this much of the bound is kept for log and shm.
MIN_SIZE = 4 * RESERVE
HORIZON = 30 * 86400  # seconds an untouched entry is kept at most
POLICY = "least-recently-touched"

# diskcache's policies are rows of this table; ours culls by expiry and writes nothing on a hit.
# Locks (expiring within the hour) and counters (never expiring) are never culled.
diskcache.core.EVICTION_POLICY[POLICY] = {
    "init": None,  # diskcache already indexes expire_time
    "get": None,
    "cull": "SELECT {fields} FROM Cache WHERE expire_time > {now} + 3600 ORDER BY expire_time LIMIT ?",
}
FAILURES = (sqlite3.Error, OSError, diskcache.Timeout)
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


def unsealed(key: str, value: bytes) -> bytes | None:
    """An inline value's bytes, or None if they are not what was stored under ``key``."""
    data = value[:-SEAL]
    return data if len(value) >= SEAL and value[-SEAL:] == _seal(key, data) else None


class Store:
    """One cache directory: opened, reopened after a failure, held under the bound its disk allows."""

    def __init__(
        self, directory: Path, size: int, retry_after: float = 5.0, files_only: bool = False
    ) -> None:
        if size < MIN_SIZE:
            raise ValueError(f"cache size {size} is below the minimum of {MIN_SIZE} bytes")
        self.directory = directory
        self.size_limit = size - RESERVE
        self.max_entry = self.size_limit // 8  # larger values would evict too much to be worth it
        self.retry_after = retry_after
        self.files_only = files_only  # every value in a file of its own, even a small one
        self.down_since: float | None = None
        self.effective = self.size_limit  # the bound for now: lower while the disk is short of space
        self._state = threading.RLock()  # guards opening, closing and the bound, across threads
        self._cache: diskcache.Cache | None = None
        self._index: int | None = None  # a descriptor of the open index, to notice its deletion
        self._checked = 0.0
        self._space_checked = float("-inf")
        self._disproved = (0, 0.0)  # free space a failed write found missing, and when
        label = "copies" if files_only else "variants"  # the copies' cache is the only files-only one
        self._gauges = (CACHE_EFFECTIVE.labels(label), CACHE_DEGRADED.labels(label))
        self._gauges[0].set(size)
        self._gauges[1].set(0)
        self.counters = Counters(self.add)  # added before the cache is closed, as when it is reopened
        self._open()

    def guard(self, operation: Callable[[diskcache.Cache], T], fallback: T, need: int = 0) -> T:
        """Run ``operation`` on the cache; on any storage failure, log once and return ``fallback``.

        One that fails for lack of space (``need`` bytes, if known) is run once more after
        culling, and a second such failure returns ``fallback`` too, with the cache still up.
        """
        self.check()
        cache = self._cache
        if cache is None or self.down_since is not None:
            return fallback
        try:
            try:
                return operation(cache)
            except FAILURES as error:
                if not _out_of_space(error):
                    raise
                self._make_room(cache, need, error)
                return operation(cache)
        except diskcache.Timeout:
            return fallback  # contention, not failure: this request goes uncached
        except FAILURES as error:
            if not _out_of_space(error):
                with self._state:
                    self._fail(error)
            return fallback

    def store(self, key: str, data: bytes, tag: str | None) -> bool:
        """Whether ``data`` was stored under ``key`` (and ``tag``), culling first to make room."""
        if len(data) > self.max_entry:
            return False
        inline = not self.files_only and len(data) + SEAL < INLINE
        value = data + _seal(key, data) if inline else data

        def store(cache: diskcache.Cache) -> bool:
            if self.effective < self.size_limit or time.monotonic() - self._space_checked >= SPACE_CHECK:
                self._measure(cache)
            if len(value) > self.effective:  # storing it would evict everything, itself included
                return False
            self._cull(cache, room=len(value))
            # A variant not stored for contention is rendered again later; a copy of a remote
            # original would be fetched again, so the copies' cache waits the contention out.
            with cache.disk.unmade_on_failure():
                cache.set(key, value, tag=tag, expire=HORIZON, retry=self.files_only)
            return True

        return self.guard(store, False, need=len(value))

    def add(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` to the shared counters, in one transaction; best effort, and not while
        down (the next operation reports a broken cache, and reopens it)."""
        cache = self._cache if self.down_since is None else None
        if cache is None:
            return
        try:
            with cache.transact():
                for name, count in counts.items():
                    cache.incr(name, count)
        except FAILURES:
            pass

    def health(self) -> dict[str, object]:
        """The state (ok, degraded: held under its bound for lack of space, or down), the configured
        bound and the effective one, in bytes; from memory, no I/O."""
        if self.down_since is not None:
            state = "down"
        else:
            state = "degraded" if self.effective < self.size_limit else "ok"
        return {"state": state, "bound": self.size_limit + RESERVE, "effective": self.effective + RESERVE}

    def close(self) -> None:
        self.counters.flush()  # dropped if the cache failed: it is down by now
        with self._state:
            if self._cache is not None:
                self._cache.close()
            if self._index is not None:
                os.close(self._index)
            self._cache = self._index = None

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
            if effective < self.size_limit <= self.effective:
                log.warning(
                    "cache in %s: %s for its %d bytes (%s); holding at most %d until space returns",
                    self.directory,
                    os.strerror(errno.ENOSPC),
                    self.size_limit + RESERVE,
                    error if error is not None else f"{free} of {disk} bytes free",
                    effective + RESERVE,
                )
            elif self.effective < self.size_limit <= effective:
                log.warning("cache in %s has the disk space for its bound again", self.directory)
            self.effective = effective
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
        if cache.volume() + room > self.effective:
            cache.size_limit = self.effective - room  # what cull() evicts down to; reset() would persist it
            EVICTIONS.inc(cache.cull())

    # --- failure handling -----------------------------------------------------------------

    def check(self) -> None:
        """Every ``retry_after`` seconds: reopen a cache that failed or whose index was deleted."""
        now = time.monotonic()
        if now - self._checked > self.retry_after:
            with self._state:
                if now - self._checked > self.retry_after:  # not already done by another thread
                    self._checked = now
                    if self.down_since is not None or not self._index_is_current():
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
            except FAILURES as again:
                return self._fail(again)
        except FAILURES as error:
            return self._fail(error)
        try:
            self._index = os.open(self.directory / "cache.db", os.O_RDONLY)
        except OSError as error:
            return self._fail(error)
        if self.down_since is not None:
            log.warning("cache in %s is available again", self.directory)
        self.down_since = None

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
            **({"disk_min_file_size": 0} if self.files_only else {}),
        )
        try:
            cache.incr(RENDERS, 0)  # a write: a read-only index fails here, not on a later request
        except FAILURES as error:
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
        if self.down_since is None:
            log.warning(
                "cache in %s unavailable (%s); serving uncached until it recovers", self.directory, error
            )
            self.down_since = time.monotonic()
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

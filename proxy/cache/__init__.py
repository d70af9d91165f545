"""The disk cache of rendered variants (and of remote originals' copies): generic storage of bytes
under keys, with a per-worker memory tier, a per-key lock across workers, and statistics.

It stores what it is given under the keys it is given (keys.py builds them), and knows nothing
of sources, parameters or the pipeline: ``fetch`` takes a callable that produces the bytes and
their type. Its parts, each with the measured choices it rests on:

    store.py     the diskcache directory: eviction, the bound, CRC seals, a full disk, failures
    memory.py    the per-worker memory tier of small variants
    locks.py     the per-key lock across workers
    counters.py  hit, miss and render counts, written at most once a second

Entries are tagged with their original (keys.original_tag; the type of a variant is read from
its first bytes, a 12-byte read) and diskcache indexes tags, so a purge removes every variant
and the reduced copy of one original without a scan. A purge also touches the ``purged`` file
in the directory, which every worker looks at no more than every ``EPOCH_CHECK`` seconds,
emptying its memory tier when it changed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import diskcache

from ..formats import mime_of
from ..keys import KIND_PREFIX
from . import locks
from .counters import HITS, MISSES, RENDERS, STAT_PREFIX
from .memory import MEMORY_ENTRY, MemoryTier
from .store import FAILURES, HORIZON, RESERVE, Store, directory_bytes, unsealed

__all__ = [
    "EPOCH_CHECK",
    "HIT",
    "MEMORY_ENTRY",
    "MISS",
    "SHARED",
    "SecondTier",
    "Rendition",
    "Variant",
    "VariantCache",
    "directory_bytes",
]

log = logging.getLogger(__name__)

SEEN_PREFIX = "seen:"
BOOKKEEPING = (locks.LOCK_PREFIX, STAT_PREFIX, SEEN_PREFIX, KIND_PREFIX)  # not counted as entries
EPOCH_CHECK = 0.5  # seconds between looks at the purge marker: how stale a memory tier may be
PURGED = "purged"  # the marker file, touched by every purge


class _Typed(Protocol):
    @property
    def mime(self) -> str: ...


class Rendition(Protocol):
    """What the cache stores for a variant: its bytes and their format (pipeline.Rendered is one)."""

    @property
    def data(self) -> bytes: ...

    @property
    def format(self) -> _Typed: ...


HIT, MISS, SHARED = "HIT", "MISS", "HIT-SHARED"  # where a variant came from, as X-Cache says


@dataclass
class Variant:
    """A rendered image: its type, its length, its bytes or an open file of them, and where it
    came from: HIT (this cache), SHARED (the second tier, kept here now) or MISS (rendered)."""

    mime: str
    length: int
    body: bytes | BinaryIO
    outcome: str

    @property
    def hit(self) -> bool:
        """Not rendered for this request."""
        return self.outcome != MISS


class Kept(Protocol):
    """What a second tier answers: a variant's bytes and type (results.Found is one)."""

    @property
    def data(self) -> bytes: ...

    @property
    def mime(self) -> str: ...


class SecondTier(Protocol):
    """Storage behind this cache, looked in on a miss before rendering, and given every render
    stored here (results.ResultTier, shared by instances). Never raises; ``put`` returns at once."""

    def get(self, key: str, tag: str) -> Kept | None: ...

    def put(self, key: str, tag: str, data: bytes, mime: str) -> None: ...


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
        self._store = Store(directory, size, retry_after, files_only)
        self.directory = directory
        self.size_limit = self._store.size_limit
        self.max_entry = self._store.max_entry
        self.lock_timeout = lock_timeout
        self.retry_after = retry_after
        self.touch_every = touch_every
        self.memory = memory
        self._hot = MemoryTier(memory)
        self._counters = self._store.counters
        self._marker = directory / PURGED
        self._epoch = self._read_epoch()  # the marker's stamp when last looked at
        self._epoch_checked = time.monotonic()

    # --- the operations the view uses ---------------------------------------------------

    def fetch(
        self,
        key: str,
        produce: Callable[[], Rendition],
        keep: Callable[[], bool],
        tag: str | None = None,
        second: SecondTier | None = None,
    ) -> Variant:
        """The cached variant, or the ``second`` tier's, or one made by ``produce``: once across
        all workers, and stored under ``tag`` (its original's, for purges), here and there.

        ``keep`` is asked after rendering whether the result may be stored (the original
        may have been replaced meanwhile); errors from ``produce`` propagate and store nothing.
        What the second tier answers was stored by a render that kept it, so it is kept here.
        """
        variant = self.get(key)
        if variant is not None:
            return variant
        with self.lock(key):
            # Look again even if the lock came at once: its last holder may have stored the
            # variant between our miss and our lock (``in`` counts no second miss).
            stored = self._store.guard(lambda cache: key in cache, False)
            variant = self.get(key) if stored else None
            if variant is not None:
                return variant
            kept = second.get(key, tag) if second is not None and tag is not None else None
            if kept is not None:
                self._keep(key, kept.data, kept.mime, tag)
                return Variant(kept.mime, len(kept.data), kept.data, SHARED)
            rendered = produce()
            self._store.guard(lambda cache: cache.incr(RENDERS), None)
            mime = rendered.format.mime
            if keep():
                self._keep(key, rendered.data, mime, tag)
                if second is not None and tag is not None:
                    second.put(key, tag, rendered.data, mime)
            return Variant(mime, len(rendered.data), rendered.data, MISS)

    def get(self, key: str) -> Variant | None:
        hot = self._recall(key)
        if hot is not None:
            return hot
        found = self._store.guard(lambda cache: cache.get(key, read=True, expire_time=True), None)
        body, expires = found if found is not None else (None, None)
        if isinstance(body, bytes):
            body = unsealed(key, body)
        self._counters.count(MISSES if body is None else HITS)
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
            if not self._hot.fits(length):
                return Variant(mime, length, body, HIT)
            with body:
                body = body.read()
        if expires is not None:
            self._hot.put(key, mime, body, expires)
        return Variant(mime, len(body), body, HIT)

    def put(self, key: str, rendered: Rendition, tag: str | None = None) -> None:
        self._keep(key, rendered.data, rendered.format.mime, tag)

    def _keep(self, key: str, data: bytes, mime: str, tag: str | None) -> None:
        if self._store.store(key, data, tag):
            self._hot.put(key, mime, data, time.time() + HORIZON)

    def lock(self, key: str, timeout: float | None = None) -> AbstractContextManager[bool]:
        """Hold ``key``'s lock across workers (locks.py); yields True if another worker held it
        first. It expires after ``lock_timeout``, which is also how long a waiter waits, unless
        ``timeout`` says less (0: not at all, so True then means "not held")."""
        return locks.hold(
            self._store, key, self.lock_timeout, self.lock_timeout if timeout is None else timeout
        )

    # --- purges (purge.py) ------------------------------------------------------------------

    def purge(self, tag: str) -> int:
        """Remove every entry stored under ``tag``, here and, within EPOCH_CHECK seconds, from
        every worker's memory tier; the number removed."""
        removed = int(self._store.guard(lambda cache: cache.evict(tag, retry=True), 0))
        try:
            self._marker.touch()
            os.utime(self._marker, ns=(time.time_ns(), time.time_ns()))  # a new stamp, even within a tick
        except OSError as error:
            log.warning("could not mark the purge in %s: %s", self._marker, error)
        self._hot.clear()
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
                self._hot.clear()
        return self._epoch

    def _read_epoch(self) -> int:
        try:
            return os.stat(self._marker).st_mtime_ns
        except OSError:
            return 0

    # --- the in-memory tier (memory.py) -------------------------------------------------

    def _recall(self, key: str) -> Variant | None:
        self._store.check()  # hits from memory must not hide a deleted index for longer than misses do
        self.epoch()  # nor a purge
        hot = self._hot.get(key)
        if hot is None:
            return None
        if hot.expires - time.time() < HORIZON - self.touch_every:  # due for a touch, as on disk
            if not self._touch(key):
                self._hot.forget(key)  # evicted or cleared on disk: hits go back to the disk
                return None
            self._hot.touched(key, time.time() + HORIZON)
        self._counters.count(HITS)
        return Variant(hot.mime, len(hot.body), hot.body, HIT)

    def _touch(self, key: str) -> bool:
        """Refresh the entry's place in eviction order; False if it is no longer on disk."""
        return bool(self._store.guard(lambda cache: cache.touch(key, expire=HORIZON), True))

    # --- blobs: reduced copies of originals (pipeline/reduced.py), remote originals' copies ---

    def get_blob(self, key: str) -> bytes | None:
        def read(cache: diskcache.Cache) -> bytes | None:
            value = cache.get(key, read=True)
            if value is None or isinstance(value, bytes):
                return None if value is None else unsealed(key, value)
            with value:
                return bytes(value.read())

        return self._store.guard(read, None)

    def put_blob(self, key: str, data: bytes, tag: str | None = None) -> None:
        """Store ``data``; counted as a render (for the copies of remote originals: a fetch)."""
        self._store.store(key, data, tag)
        self._store.guard(lambda cache: cache.incr(RENDERS), None)

    def open_blob(self, key: str, count: bool = True) -> BinaryIO | None:
        """An open file of the value's bytes (values of a ``files_only`` cache), or None; counted
        as a hit or a miss unless ``count`` is off (a look that is not a use)."""

        def read(cache: diskcache.Cache) -> BinaryIO | None:
            value = cache.get(key, read=True, retry=True)  # contention must not look like absence
            return value if value is None or not isinstance(value, bytes) else None

        found = self._store.guard(read, None)
        if count:
            self._counters.count(MISSES if found is None else HITS)
        return found

    # --- small records (remote originals' metadata, remembered refusals) ------------------

    def get_value(self, key: str) -> object:
        """The record, or None; a busy index is waited for, since absence would mean a refetch."""

        def read(cache: diskcache.Cache) -> object:
            try:
                return cache.get(key, retry=True)
            except FAILURES:
                raise
            except Exception:  # a damaged index hands back any bytes, and unpickling them raises anything
                return None

        return self._store.guard(read, None)

    def set_value(self, key: str, value: object, expire: float = HORIZON) -> None:
        """Store a record, waiting out a busy index: a record lost would mean a second fetch."""
        self._store.guard(lambda cache: cache.set(key, value, expire=expire, retry=True), None)

    def delete(self, key: str) -> None:
        self._store.guard(lambda cache: cache.delete(key), None)

    def first_sight(self, key: str) -> bool:
        """True the first time ``key`` is asked about (within HORIZON); records the sighting."""
        return bool(self._store.guard(lambda cache: cache.add(SEEN_PREFIX + key, 1, expire=HORIZON), True))

    # --- for operators --------------------------------------------------------------------

    def writable(self) -> bool:
        """Whether a write succeeds now (for /readyz); a failure is handled like any other."""
        return bool(self._store.guard(lambda cache: cache.incr(RENDERS, 0) is not None, False))

    def health(self) -> dict[str, object]:
        """The cache's state (ok, degraded: held under its bound for lack of space, or down), its
        configured bound and its effective one, in bytes; from memory, no I/O (for /healthz)."""
        return self._store.health()

    def stats(self) -> dict[str, int]:
        self._counters.flush()

        def collect(cache: diskcache.Cache) -> dict[str, int]:
            entries = sum(1 for k in cache.iterkeys() if not k.startswith(BOOKKEEPING))
            return {
                "entries": entries,
                "bytes": directory_bytes(self.directory),
                "limit": self.size_limit + RESERVE,
                "effective": self._store.effective + RESERVE,
                **{name[len(STAT_PREFIX) :]: int(cache.get(name, 0)) for name in (HITS, MISSES, RENDERS)},
            }

        return self._store.guard(collect, {})

    def clear(self) -> int:
        self._hot.clear()
        return int(self._store.guard(lambda cache: cache.clear(), 0))

    def close(self) -> None:
        self._store.close()

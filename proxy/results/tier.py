"""ResultTier: one worker's bounded, checked and counted use of a backend (the package's
docstring says what it guarantees and why)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from ..keys import PIPELINE_VERSION, key_hash
from ..metrics import RESULT_READS, RESULT_WRITES
from .base import Backend, Found, Stored

log = logging.getLogger(__name__)

FAILURES = 3  # failures in a row after which a worker leaves the tier alone
COOL_DOWN = 30.0  # seconds it then does
PENDING = 64  # writes waiting, per worker, beyond which new ones are dropped
READERS = 8  # threads per worker that read the tier (a hung read holds one until its timeout)
WRITERS = 2  # threads per worker that write to it
WARN_EVERY = 60.0  # seconds between two warnings of a worker
PURGE_TIMEOUT = 30.0  # seconds a purge may spend deleting an original's objects


class Breaker:
    """When to leave one kind of call (reads, or writes) alone: after FAILURES failures in a row,
    for COOL_DOWN seconds. Failures of calls made at the same time count once: a worker starting
    under load, whose first reads all time out together, has met one bad moment, not three."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures = 0  # in a row
        self._last = -1.0  # monotonic: when the last failure counted was seen
        self._resting_until = 0.0  # monotonic

    def resting(self) -> bool:
        return self._resting_until > time.monotonic()

    def succeeded(self) -> None:
        self._failures = 0

    def failed(self, started: float) -> bool:
        """Count the failure of a call made at ``started`` (monotonic); whether it starts a rest."""
        with self._lock:
            if started <= self._last:  # made before the last failure was seen: the same bad moment
                return False
            self._last = time.monotonic()
            self._failures += 1
            if self._failures < FAILURES:
                return False
            self._failures = 0
            self._resting_until = self._last + COOL_DOWN
            return True


@dataclass
class ResultTier:
    """One worker's view of the shared tier over ``backend``: bounded, checked, counted."""

    backend: Backend
    timeout: float  # seconds a read may take before it is a miss
    ttl: float = 0.0  # seconds an object is good for; 0: until the bucket's lifecycle removes it

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)  # told when no write is pending
        self._pid = 0
        self._readers: ThreadPoolExecutor | None = None
        self._writers: ThreadPoolExecutor | None = None
        self._pending = 0  # writes submitted and not done
        self._reads, self._writes = Breaker(), Breaker()  # rested apart: a slow read loses no write
        self._warned = 0.0  # monotonic: when a warning was last logged
        self._held_back = 0  # warnings not logged since

    # --- reads, on the request path ---------------------------------------------------------

    def get(self, key: str, tag: str) -> Found | None:
        """The variant ``key`` of the original tagged ``tag``, or None (a miss), within the timeout."""
        if self._reads.resting():
            RESULT_READS.labels("skipped").inc()
            return None
        name = object_name(key, tag)
        readers = self._pools()[0]
        self.backend.prepare()  # a client made once per worker, not within the read's time
        started = time.monotonic()
        future = readers.submit(self.backend.read, name)
        try:
            stored = future.result(timeout=self.timeout)
        except FutureTimeout:
            RESULT_READS.labels("timeout").inc()
            self._failed(self._reads, started, "read", f"no answer within {self.timeout:g} s")
            return None
        except Exception as error:  # the tier's failures are misses, whatever they are
            RESULT_READS.labels("error").inc()
            self._failed(self._reads, started, "read", _words(error))
            return None
        self._reads.succeeded()
        if stored is None:
            RESULT_READS.labels("miss").inc()
            return None
        problem = self._problem(key, stored)
        if problem is not None:
            RESULT_READS.labels(problem).inc()
            if problem == "damaged":
                self._warn(f"result store {self.backend.name}: {name} was damaged, and is removed")
                self._remove(name)
            return None
        RESULT_READS.labels("hit").inc()
        return Found(stored.data, stored.mime)

    def _problem(self, key: str, stored: Stored) -> str | None:
        """Why the object cannot answer for ``key``: "damaged" or "expired"; None if it can."""
        meta = stored.meta
        if (
            meta.get("variant") != key_hash(key)
            or meta.get("digest") != hashlib.sha256(stored.data).hexdigest()
            or not stored.mime.startswith("image/")
        ):
            return "damaged"
        if self.ttl:
            try:
                stamped = float(meta.get("stored", ""))
            except ValueError:
                return "damaged"
            if time.time() - stamped > self.ttl:
                return "expired"
        return None

    # --- writes, off the request path -------------------------------------------------------

    def put(self, key: str, tag: str, data: bytes, mime: str) -> None:
        """Write a render to the tier on a thread of the pool; returns at once."""
        if self._writes.resting():
            RESULT_WRITES.labels("skipped").inc()
            return
        with self._lock:
            if self._pending >= PENDING:
                RESULT_WRITES.labels("dropped").inc()
                return
            self._pending += 1
        meta = {
            "variant": key_hash(key),
            "digest": hashlib.sha256(data).hexdigest(),
            "stored": str(int(time.time())),
            "tag": tag,
            "pipeline": PIPELINE_VERSION,
        }
        name = object_name(key, tag)
        try:
            future = self._pools()[1].submit(self._write, name, data, mime, meta)
        except RuntimeError:  # the pool is shut down: the process is ending
            with self._lock:
                self._pending -= 1
            return
        future.add_done_callback(self._written)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the writes under way are done (the CLI, before it exits; tests); whether
        they are, within ``timeout`` seconds."""
        with self._settled:
            return self._settled.wait_for(lambda: not self._pending, timeout)

    def _write(self, name: str, data: bytes, mime: str, meta: dict[str, str]) -> None:
        started = time.monotonic()
        try:
            self.backend.write(name, data, mime, meta)
        except Exception as error:  # counted and rate-limited: a write is never an error answered
            RESULT_WRITES.labels("error").inc()
            self._failed(self._writes, started, "write", _words(error))
            return
        RESULT_WRITES.labels("stored").inc()
        self._writes.succeeded()

    def _written(self, future: Future[None]) -> None:
        with self._lock:
            self._pending -= 1
            if not self._pending:
                self._settled.notify_all()

    # --- purges -----------------------------------------------------------------------------

    def purge(self, tag: str) -> int | None:
        """Delete every object of the original tagged ``tag``; how many, or None if the tier
        could not say within PURGE_TIMEOUT (logged; the objects left name the original's
        current version, so they are what a render would give)."""
        future = self._pools()[0].submit(self.backend.delete_prefix, f"{tag}/")
        try:
            return future.result(timeout=PURGE_TIMEOUT)
        except Exception as error:  # a purge of this instance stands even when the tier's fails
            log.warning("result store %s: purge of %s failed: %s", self.backend.name, tag, _words(error))
            return None

    # --- time bounds, cool-down, warnings ---------------------------------------------------

    def _pools(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        """This process's pools: made after gunicorn's fork, never inherited across it."""
        if self._pid != os.getpid() or self._readers is None or self._writers is None:
            with self._lock:
                if self._pid != os.getpid() or self._readers is None or self._writers is None:
                    self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="result-read")
                    self._writers = ThreadPoolExecutor(WRITERS, thread_name_prefix="result-write")
                    self._pending = 0
                    self._pid = os.getpid()
        return self._readers, self._writers

    def _remove(self, name: str) -> None:
        """Delete a damaged object before the request renders, within the timeout: the render's
        write, which follows, must not race the delete."""
        try:
            self._pools()[0].submit(self.backend.delete, name).result(timeout=self.timeout)
        except Exception as error:  # best effort: the object is never answered anyway
            self._warn(f"result store {self.backend.name}: could not remove {name}: {_words(error)}")

    def _failed(self, breaker: Breaker, started: float, what: str, words: str) -> None:
        suffix = f"; {what}s left alone for {COOL_DOWN:g} s" if breaker.failed(started) else ""
        self._warn(f"result store {self.backend.name}: {what} failed: {words}{suffix}")

    def _warn(self, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._warned < WARN_EVERY and self._warned:
                self._held_back += 1
                return
            held, self._held_back, self._warned = self._held_back, 0, now
        log.warning("%s%s", message, f" ({held} more warnings held back)" if held else "")


def object_name(key: str, tag: str) -> str:
    """``<original tag>/<variant hash>``: the original's objects share a prefix."""
    return f"{tag}/{key_hash(key)}"


def _words(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]

"""What every remote mount shares: local copies, a trusted version for a while, one attempt, stale answers.

A remote original's version is its upstream ETag (or Last-Modified and size). It is kept
with a local copy of the bytes in a cache of their own (``copies``: a diskcache beside the
variant cache, with the same fail-safe rules), and trusted for ``PROXY_SOURCE_TTL`` seconds:
within that time a hit or a 304 asks upstream nothing, and each worker answers from its
own memo without even reading the shared record.

- Past the TTL a known copy still answers at once (stale-while-revalidate): the request
  starts a conditional GET off its path, so an unchanged original is not downloaded again
  and a changed one is seen by the requests after it. A revalidation that fails keeps the
  copy (stale-if-error) and is tried again ``RETRY`` seconds later; logged once per outage.
- One attempt per original at a time. In a worker, the attempt runs on a thread of its own
  and every request for that original waits on its outcome, none longer than
  ``PROXY_FETCH_TIMEOUT`` plus ``GRACE``, however the upstream misbehaves (no status line, a
  trickle, a retry). Across workers the attempt holds the copies' per-key lock, and a
  worker that waited for it takes the outcome its holder left: the version, the missing
  mark, or the failure mark.
- Upstream 404/403: our 404, remembered for ``NEGATIVE_TTL`` seconds.
- Upstream failing (5xx, refused, malformed, a body shorter than declared, timeout) with no
  copy known: 502, or 504 on a timeout, with a fixed public message (the upstream's URL and
  the library's words go to the log, with the request id). The failure is remembered for
  ``RETRY`` seconds, by every worker, so an outage costs one attempt per original per
  ``RETRY``, not one per request.
- Bytes over ``PROXY_MAX_SOURCE_BYTES`` while streaming: 413, the partial download dropped.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as WaitedTooLong
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol

from flask import has_request_context

from ..access import request_id
from ..errors import NotFound, ProxyError, UpstreamFailed, UpstreamTimeout
from ..keys import copy_key, failed_key, missing_key, original_tag, record_key
from .base import Source

if TYPE_CHECKING:
    from ..cache import VariantCache
    from ..settings import Settings

log = logging.getLogger(__name__)

NEGATIVE_TTL = 5.0  # seconds a missing original is remembered as missing
RETRY = 5.0  # seconds a failed attempt is remembered, and between revalidations while failing
GRACE = 0.5  # seconds a request waits past its attempt's deadline: thread start, lock, store
MEMO_ENTRIES = 10_000  # per worker
FAILED = "upstream failed"  # the public messages: nothing of the upstream's URL or words
TIMED_OUT = "upstream timed out"


class Missing(Exception):
    """Upstream says the object does not exist (404, or 403 as S3 answers without ListBucket)."""


class UpstreamError(Exception):
    """Upstream failed: refused, 5xx, malformed, short, or (``timeout``) too slow. The message is
    for the log only: it may name the upstream's URL and its library's words."""

    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass(frozen=True)
class Fetched:
    data: bytes
    etag: str | None  # unquoted
    last_modified: datetime | None


class Upstream(Protocol):
    """Where one mount's objects live (s3.py, web.py)."""

    name: str  # for logs: s3://bucket/prefix, https://host/base/

    def fetch(
        self, key: str, etag: str | None, modified: datetime | None, limit: int, deadline: float
    ) -> Fetched | None:
        """The object, or None if it is unchanged since ``etag`` (or, without one, since
        ``modified``). Gives up at ``deadline`` (time.monotonic()). Raises ``Missing``,
        ``UpstreamError``, or ``SourceTooLarge`` past ``limit`` bytes (never trusting a
        declared length alone)."""
        ...


class Record(NamedTuple):
    """What is remembered of a remote original, shared by the workers."""

    version: str
    etag: str | None
    last_modified: float  # POSIX seconds
    checked: float  # POSIX seconds: when upstream last confirmed it (or when to try again)
    stamped: bool = False  # last_modified is upstream's own, so If-Modified-Since may use it

    @property
    def modified(self) -> datetime | None:
        """The date a conditional GET may send: only upstream's own, never our clock's."""
        return datetime.fromtimestamp(self.last_modified, UTC) if self.stamped and not self.etag else None


Outcome = tuple[Record, bytes | None]  # what an attempt learnt, and the bytes if it downloaded them


class RemoteStore:
    """A remote mount: resolves ids to versions from memory, the shared record, or upstream."""

    def __init__(self, upstream: Upstream, copies: VariantCache, settings: Settings) -> None:
        self.upstream = upstream
        self._copies = copies
        self._ttl = settings.source_ttl
        self._timeout = settings.fetch_timeout
        self._limit = settings.max_source_bytes
        self._memo: OrderedDict[str, tuple[float, Source | None]] = OrderedDict()  # id: until, source
        self._failures: dict[str, tuple[float, bool]] = {}  # id: until, timed out
        self._memo_lock = threading.Lock()
        self._flights: dict[tuple[str, str], tuple[Future[Outcome], float]] = {}  # attempt: outcome, deadline
        self._failing = False  # an outage was logged; cleared by the next success
        self._epoch = copies.epoch()  # the copies' purge marker, when the memo was last valid

    def resolve(self, image_id: str, key: str) -> Source:
        if self._copies.epoch() != self._epoch:  # purged somewhere: remember nothing from before
            self._epoch = self._copies.epoch()
            with self._memo_lock:
                self._memo.clear()
                self._failures.clear()
        remembered = self._memo.get(image_id)
        if remembered is not None and remembered[0] > time.monotonic():
            if remembered[1] is None:
                raise NotFound()
            return remembered[1]
        record = self._record(image_id)
        if record is not None:
            if time.time() - record.checked >= self._ttl:  # answer now, ask upstream off the path
                self._start(image_id, "learn", partial(self._learn, image_id, key, record))
            return self._remember(image_id, record)
        if self._copies.get_value(missing_key(image_id)):
            self._remember_missing(image_id)
            raise NotFound()
        self._raise_remembered_failure(image_id)
        record, _ = self._wait(image_id, "learn", partial(self._learn, image_id, key, None))
        return self._remember(image_id, record)

    def forget(self, image_id: str) -> int:
        """Drop every local copy of ``image_id``, its remembered version and any remembered
        refusal or failure, so that the next request asks upstream; other workers' memos within a second."""
        removed = self._copies.purge(original_tag(image_id))
        for key in (record_key(image_id), missing_key(image_id), failed_key(image_id)):
            self._copies.delete(key)
        with self._memo_lock:
            self._memo.pop(image_id, None)
            self._failures.pop(image_id, None)
        return removed

    @contextmanager
    def local(self, source: Source, key: str) -> Iterator[str]:
        """The copy of ``source``'s version, fetched again if it was evicted meanwhile."""
        handle = self._copies.open_blob(copy_key(source.id, source.version))
        if handle is None:  # evicted, or the copies cache is failing: fetch again, whole
            self._raise_remembered_failure(source.id)
            wanted = copy_key(source.id, source.version)
            record, data = self._wait(source.id, "download", partial(self._download, source.id, key, wanted))
            handle = self._copies.open_blob(copy_key(source.id, record.version), count=False) or _spooled(
                data
            )
        with handle:
            # The file stays readable through this descriptor even if evicted meanwhile.
            yield f"/proc/self/fd/{handle.fileno()}"

    # --- attempts: one per original and purpose in a worker, on a thread of its own -------------

    def _start(
        self, image_id: str, purpose: str, attempt: Callable[[float, str], Outcome]
    ) -> tuple[Future[Outcome], float]:
        """The attempt in flight for ``image_id`` and ``purpose``, started now if there is none."""
        flight = (image_id, purpose)
        with self._memo_lock:
            running = self._flights.get(flight)
            if running is not None:
                return running
            future: Future[Outcome] = Future()
            deadline = time.monotonic() + self._timeout
            self._flights[flight] = future, deadline
        ident = request_id() if has_request_context() else "-"

        def run() -> None:
            try:
                future.set_result(attempt(deadline, ident))
            except BaseException as error:  # handed to every waiter, none of which may be left hanging
                future.set_exception(error)
            finally:
                with self._memo_lock:
                    self._flights.pop(flight, None)

        threading.Thread(target=run, name=f"fetch {image_id}"[:64], daemon=True).start()
        return future, deadline

    def _wait(self, image_id: str, purpose: str, attempt: Callable[[float, str], Outcome]) -> Outcome:
        """The outcome of the attempt in flight (started if need be), or 504 at its deadline."""
        future, deadline = self._start(image_id, purpose, attempt)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()) + GRACE)
        except WaitedTooLong:
            raise UpstreamTimeout(TIMED_OUT) from None

    def _learn(self, image_id: str, key: str, known: Record | None, deadline: float, ident: str) -> Outcome:
        """Ask upstream for the version (conditionally if ``known``), once across workers; a
        worker that waited takes the outcome left by the one that asked."""
        wait = 0.0 if known is not None else max(0.0, deadline - time.monotonic())
        with self._copies.lock(record_key(image_id), timeout=wait) as waited:
            # Look again even if the lock came at once: another worker may have asked between
            # our look and our lock, and its outcome is ours.
            record = self._record(image_id)
            if known is not None:
                if waited or (record is not None and record.checked > known.checked):
                    return record or known, None  # another worker is revalidating, or just did
            else:
                if self._copies.get_value(missing_key(image_id)):
                    raise NotFound()
                if record is not None:
                    return record, None
                self._raise_remembered_failure(image_id)
                if waited and time.monotonic() >= deadline:  # its holder outlived our deadline
                    raise UpstreamTimeout(TIMED_OUT)
            try:
                return self._fetch(image_id, key, known, deadline)
            except UpstreamError as error:
                if known is None:
                    raise self._failed(image_id, error, ident) from None
                if not self._failing:
                    log.warning("%s failing (%s); serving known copies meanwhile", self.upstream.name, error)
                    self._failing = True
                known = known._replace(checked=time.time() - self._ttl + RETRY)
                self._copies.set_value(record_key(image_id), known)
                return known, None

    def _download(self, image_id: str, key: str, wanted: str, deadline: float, ident: str) -> Outcome:
        """The whole original again, once across workers, for a copy that was evicted."""
        with self._copies.lock(wanted, timeout=max(0.0, deadline - time.monotonic())):
            record = self._record(image_id)  # looked at again, even if the lock came at once
            fetched = self._copies.open_blob(wanted, count=False) if record is not None else None
            if record is not None and fetched is not None:  # another worker fetched it: the caller opens it
                fetched.close()
                return record, None
            self._raise_remembered_failure(image_id)  # or failed to, a moment ago
            try:
                return self._fetch(image_id, key, None, deadline)
            except UpstreamError as error:
                raise self._failed(image_id, error, ident) from None

    def _fetch(self, image_id: str, key: str, known: Record | None, deadline: float) -> Outcome:
        """Conditionally if a copy is known; the new record, and the bytes if they were fetched."""
        etag, modified = (known.etag, known.modified) if known else (None, None)
        try:
            fetched = self.upstream.fetch(key, etag, modified, self._limit, deadline)
        except Missing:
            self._copies.delete(record_key(image_id))
            self._copies.set_value(missing_key(image_id), True, expire=NEGATIVE_TTL)
            self._remember_missing(image_id)
            raise NotFound() from None
        if self._failing:
            log.warning("%s answering again", self.upstream.name)
            self._failing = False
        now = time.time()
        if fetched is None:
            assert known is not None
            record = known._replace(checked=now)
        else:
            stamped = fetched.last_modified is not None
            modified_at = fetched.last_modified.timestamp() if fetched.last_modified else now
            version = fetched.etag or f"{modified_at:.0f}-{len(fetched.data):x}"
            record = Record(version, fetched.etag, modified_at, now, stamped)
            self._copies.put_blob(copy_key(image_id, version), fetched.data, original_tag(image_id))
        self._copies.set_value(record_key(image_id), record)
        return record, fetched.data if fetched else None

    # --- failures: public, logged, remembered ---------------------------------------------

    def _failed(self, image_id: str, error: UpstreamError, ident: str) -> ProxyError:
        """The public error for a failed attempt; the details go to the log, the failure to memory."""
        log.warning(
            "upstream fetch failed",
            extra={"fields": {"id": ident, "upstream": self.upstream.name, "error": str(error)}},
        )
        self._copies.set_value(failed_key(image_id), error.timeout, expire=RETRY)
        with self._memo_lock:
            self._failures[image_id] = time.monotonic() + RETRY, error.timeout
        return _public(error.timeout)

    def _raise_remembered_failure(self, image_id: str) -> None:
        """Raise the failure of a recent attempt at ``image_id`` (this worker's or another's)."""
        until, timed_out = self._failures.get(image_id, (0.0, False))
        if until > time.monotonic():
            raise _public(timed_out)
        shared = self._copies.get_value(failed_key(image_id))
        if isinstance(shared, bool):
            with self._memo_lock:
                self._failures[image_id] = time.monotonic() + RETRY / 2, shared  # at most RETRY old
            raise _public(shared)

    # --- memory -----------------------------------------------------------------------------

    def _record(self, image_id: str) -> Record | None:
        value = self._copies.get_value(record_key(image_id))
        return Record(*value) if isinstance(value, tuple) else None

    def _remember(self, image_id: str, record: Record) -> Source:
        source = Source(image_id, record.version, datetime.fromtimestamp(record.last_modified, UTC))
        until = time.monotonic() + max(0.0, record.checked + self._ttl - time.time())
        self._memorise(image_id, until, source)
        return source

    def _remember_missing(self, image_id: str) -> None:
        self._memorise(image_id, time.monotonic() + NEGATIVE_TTL, None)

    def _memorise(self, image_id: str, until: float, source: Source | None) -> None:
        with self._memo_lock:
            self._memo[image_id] = (until, source)
            self._memo.move_to_end(image_id)
            while len(self._memo) > MEMO_ENTRIES:
                self._memo.popitem(last=False)
            if len(self._failures) > MEMO_ENTRIES:  # only recent ones matter
                now = time.monotonic()
                self._failures = {k: v for k, v in self._failures.items() if v[0] > now}


def _public(timed_out: bool) -> ProxyError:
    return UpstreamTimeout(TIMED_OUT) if timed_out else UpstreamFailed(FAILED)


def _spooled(data: bytes | None) -> BinaryIO:
    """A temporary file of ``data``, for when the copies cache cannot keep it."""
    if data is None:
        raise UpstreamFailed(FAILED)
    spool = tempfile.TemporaryFile()
    spool.write(data)
    spool.seek(0)
    return spool

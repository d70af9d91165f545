"""What every remote mount shares: local copies, a trusted version for a while, one fetch, stale-if-error.

A remote original's version is its upstream ETag (or Last-Modified and size). It is kept
with a local copy of the bytes in a cache of their own (``copies``: a diskcache beside the
variant cache, with the same fail-safe rules), and trusted for ``PROXY_SOURCE_TTL`` seconds:
within that time a hit or a 304 asks upstream nothing, and each worker answers from its
own memo without even reading the shared record. After it, the next request revalidates
with a conditional GET, so an unchanged original is not downloaded again.

- One fetch per original at a time across all workers (the cache's per-key lock); requests
  that arrive meanwhile use the version already known, or wait for the first one.
- Upstream 404/403: our 404, remembered for ``NEGATIVE_TTL`` seconds.
- Upstream failing (5xx, refused, timeout): a known copy keeps being served, even past its
  TTL, and upstream is asked again ``RETRY`` seconds later; logged once per outage. With no
  copy known, 502 (or 504 on a timeout).
- Bytes over ``PROXY_MAX_SOURCE_BYTES`` while streaming: 413, the partial download dropped.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, Protocol

from ..errors import NotFound, UpstreamFailed, UpstreamTimeout
from ..purge import original_tag
from . import Source

if TYPE_CHECKING:
    from ..cache import VariantCache
    from ..settings import Settings

log = logging.getLogger(__name__)

NEGATIVE_TTL = 5.0  # seconds a missing original is remembered as missing
RETRY = 5.0  # seconds between attempts while upstream is failing and a copy is served
MEMO_ENTRIES = 10_000  # per worker


class Missing(Exception):
    """Upstream says the object does not exist (404, or 403 as S3 answers without ListBucket)."""


class UpstreamError(Exception):
    """Upstream failed: refused, 5xx, malformed, or (``timeout``) too slow."""

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

    def fetch(self, key: str, etag: str | None, limit: int) -> Fetched | None:
        """The object, or None if ``etag`` still matches. Raises ``Missing``, ``UpstreamError``,
        or ``SourceTooLarge`` past ``limit`` bytes (never trusting a declared length alone)."""
        ...


class Record(NamedTuple):
    """What is remembered of a remote original, shared by the workers."""

    version: str
    etag: str | None
    last_modified: float  # POSIX seconds
    checked: float  # POSIX seconds: when upstream last confirmed it (or when to try again)


class RemoteStore:
    """A remote mount: resolves ids to versions from memory, the shared record, or upstream."""

    def __init__(self, upstream: Upstream, copies: VariantCache, settings: Settings) -> None:
        self.upstream = upstream
        self._copies = copies
        self._ttl = settings.source_ttl
        self._limit = settings.max_source_bytes
        self._memo: OrderedDict[str, tuple[float, Source | None]] = OrderedDict()  # id: until, source
        self._memo_lock = threading.Lock()
        self._failing = False  # an outage was logged; cleared by the next success
        self._epoch = copies.epoch()  # the copies' purge marker, when the memo was last valid

    def resolve(self, image_id: str, key: str) -> Source:
        if self._copies.epoch() != self._epoch:  # purged somewhere: remember nothing from before
            self._epoch = self._copies.epoch()
            with self._memo_lock:
                self._memo.clear()
        remembered = self._memo.get(image_id)
        if remembered is not None and remembered[0] > time.monotonic():
            if remembered[1] is None:
                raise NotFound()
            return remembered[1]
        record = self._record(image_id)
        if record is not None and time.time() - record.checked < self._ttl:
            return self._remember(image_id, record)
        if self._copies.get_value(_missing_key(image_id)):
            self._remember_missing(image_id)
            raise NotFound()
        return self._remember(image_id, self._revalidate(image_id, key, record))

    def forget(self, image_id: str) -> int:
        """Drop every local copy of ``image_id``, its remembered version and any remembered
        refusal, so that the next request asks upstream; other workers' memos within a second."""
        removed = self._copies.purge(original_tag(image_id))
        for key in (_record_key(image_id), _missing_key(image_id)):
            self._copies.delete(key)
        with self._memo_lock:
            self._memo.pop(image_id, None)
        return removed

    @contextmanager
    def local(self, source: Source, key: str) -> Iterator[str]:
        """The copy of ``source``'s version, fetched again if it was evicted meanwhile."""
        handle = self._copies.open_blob(_copy_key(source.id, source.version))
        if handle is None:  # evicted, or the copies cache is failing: fetch again, whole
            record, data = self._fetch(source.id, key, None)
            handle = self._copies.open_blob(_copy_key(source.id, record.version)) or _spooled(data)
        with handle:
            # The file stays readable through this descriptor even if evicted meanwhile.
            yield f"/proc/self/fd/{handle.fileno()}"

    def _revalidate(self, image_id: str, key: str, record: Record | None) -> Record:
        """Ask upstream, once across workers; others wait, or use the version already known."""
        with self._copies.lock(_record_key(image_id)) as waited:
            if waited:  # another worker asked meanwhile
                if self._copies.get_value(_missing_key(image_id)):
                    raise NotFound()
                record = self._record(image_id) or record
                if record is not None:
                    return record
            try:
                return self._fetch(image_id, key, record)[0]
            except UpstreamError as error:
                if record is None:
                    raise (UpstreamTimeout if error.timeout else UpstreamFailed)(str(error)) from None
                if not self._failing:
                    log.warning("%s failing (%s); serving known copies meanwhile", self.upstream.name, error)
                    self._failing = True
                record = record._replace(checked=time.time() - self._ttl + RETRY)
                self._copies.set_value(_record_key(image_id), record)
                return record

    def _fetch(self, image_id: str, key: str, record: Record | None) -> tuple[Record, bytes | None]:
        """Conditionally if a copy is known; the new record, and the bytes if they were fetched."""
        try:
            fetched = self.upstream.fetch(key, record.etag if record else None, self._limit)
        except Missing:
            self._copies.delete(_record_key(image_id))
            self._copies.set_value(_missing_key(image_id), True, expire=NEGATIVE_TTL)
            self._remember_missing(image_id)
            raise NotFound() from None
        if self._failing:
            log.warning("%s answering again", self.upstream.name)
            self._failing = False
        now = time.time()
        if fetched is None:
            assert record is not None
            record = record._replace(checked=now)
        else:
            modified = fetched.last_modified.timestamp() if fetched.last_modified else now
            version = fetched.etag or f"{modified:.0f}-{len(fetched.data):x}"
            record = Record(version, fetched.etag, modified, now)
            self._copies.put_blob(_copy_key(image_id, version), fetched.data, original_tag(image_id))
        self._copies.set_value(_record_key(image_id), record)
        return record, fetched.data if fetched else None

    def _record(self, image_id: str) -> Record | None:
        value = self._copies.get_value(_record_key(image_id))
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


def _record_key(image_id: str) -> str:
    return "record|" + image_id


def _missing_key(image_id: str) -> str:
    return "missing|" + image_id


def _copy_key(image_id: str, version: str) -> str:
    return f"copy|{image_id}|{version}"


def _spooled(data: bytes | None) -> BinaryIO:
    """A temporary file of ``data``, for when the copies cache cannot keep it."""
    if data is None:
        raise UpstreamFailed("the original's local copy is unavailable")
    spool = tempfile.TemporaryFile()
    spool.write(data)
    spool.seek(0)
    return spool

"""The shared result tier: renders kept in object storage, where every instance finds them.

Each instance keeps its renders in its own disk cache. Behind a consistent-hash front, a new
instance, a replaced one, or one restarted on an empty disk would otherwise render again
everything it now owns. With ``PROXY_RESULT_STORE`` set, a local miss looks in the tier before
rendering (``VariantCache.fetch``), and a render is written to it off the request path.

    tier.py      ResultTier: names, integrity, expiry, time bounds, cool-down, counts
    base.py      an object as a backend reads it, and the backend interface
    s3.py        s3://bucket/prefix/, through boto3 (the sources' credentials and endpoint)
    files.py     file:///path/, a directory several instances mount

An object is named ``<prefix><original tag>/<variant hash>``: the tag of its original
(keys.original_tag), so that a purge deletes one prefix, and the hash of the local variant key
(keys.key_hash, which is also the ETag), which names the original's version, the canonical
transform, the format produced and the pipeline version, and not the URL's signature: a
changed original is never answered with an old render, and a new secret keeps the tier.

What the tier answers is checked before it is used: its metadata names the variant it was
written for and a SHA-256 of its bytes; an object whose bytes or name do not match is a miss,
and is removed. ``PROXY_RESULT_TTL`` makes objects older than it a miss as well.

The tier is an optimisation, never a dependency: a read waits at most ``PROXY_RESULT_TIMEOUT``
and any failure of it (refused, hanging, slow, garbled) is a miss; after ``FAILURES`` failures
in a row a worker leaves the tier's reads (or writes: each has its own count, tier.Breaker)
alone for ``COOL_DOWN`` seconds, failures of calls made at the same moment counting once.
Writes run on a small pool of their own, and are dropped, counted, when ``PENDING`` are already
waiting. Warnings are
logged at most once per ``WARN_EVERY`` seconds per worker, with how many were held back; every
outcome is counted in /metrics.
"""

from __future__ import annotations

import threading

from .base import Found, Stored
from .tier import ResultTier, object_name

__all__ = ["Found", "ResultTier", "Stored", "object_name", "open_tier", "prepare_after_fork"]


_OPENED: list[ResultTier] = []  # this process's tiers, for prepare_after_fork


def open_tier(location: str, timeout: float, ttl: float) -> ResultTier | None:
    """The tier at ``location`` (PROXY_RESULT_STORE), or None when it is empty."""
    if not location:
        return None
    location = location if location.endswith("/") else location + "/"  # as settings parse it
    if location.startswith("s3://"):
        from .s3 import S3Results  # boto3 takes a while to load: only when asked for

        tier = ResultTier(S3Results(location.removeprefix("s3://"), timeout), timeout, ttl)
    else:
        from .files import FileResults

        tier = ResultTier(FileResults(location.removeprefix("file://")), timeout, ttl)
    _OPENED.append(tier)
    return tier


def prepare_after_fork() -> None:
    """Make each tier's client in a new worker now, on a thread of its own (gunicorn.conf.py's
    post_fork): boto3 takes about half a second to make one, which the worker's first reads
    would otherwise wait for, all at once, while it starts."""
    for tier in _OPENED:
        threading.Thread(target=tier.backend.prepare, name="result-prepare", daemon=True).start()

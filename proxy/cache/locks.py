"""The lock of one key across the workers of an instance: a miss renders (or fetches) once.

A lock is an entry of the cache itself (``lock:`` and the key), added in a transaction, so any
worker of the instance sees it. It holds its holder's pid, so a waiter breaks it as soon as
that process is gone (a worker killed mid-render), and it expires (the cache's
``lock_timeout``), so a waiter is never stuck behind it for longer. The eviction policy culls
no entry that expires within the hour (store.py), so a held lock is never evicted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import diskcache

from ..gate import alive
from .store import Store

LOCK_PREFIX = "lock:"


@contextmanager
def hold(store: Store, key: str, expire: float, timeout: float) -> Iterator[bool]:
    """Hold ``key``'s lock across workers; yields True if another worker held it first.

    The lock expires after ``expire`` seconds, after which a waiter goes on without it rather
    than hang; a waiter waits ``timeout`` seconds at most (0: not at all, so True then means
    "not held"). Waiters poll with ``in``, which neither touches LRU order nor counts as a miss,
    and stop waiting as soon as the key is stored.
    """
    name = LOCK_PREFIX + key
    deadline = time.monotonic() + timeout
    owned = _acquire(store, name, expire)
    waited = not owned
    delay = 0.002
    while owned is False and time.monotonic() < deadline:
        if store.down_since is not None or store.guard(lambda cache: key in cache, False):
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
        owned = _acquire(store, name, expire)
    try:
        yield waited
    finally:
        if owned:
            store.guard(lambda cache: cache.delete(name), None)


def _acquire(store: Store, name: str, expire: float) -> bool | None:
    """True if taken, False if another worker holds it, None if the cache cannot say (down,
    or no room for the lock even after culling): then nobody waits for it."""

    def attempt(cache: diskcache.Cache) -> bool:
        try:
            with cache.transact():
                if cache.add(name, os.getpid(), expire=expire):
                    return True
                try:
                    holder = cache.incr(name, 0, default=None)  # reads without counting a hit
                except KeyError:
                    return False  # released a moment ago: the next attempt takes it
                if alive(holder):
                    return False
                cache.set(name, os.getpid(), expire=expire)  # its holder died
                return True
        except diskcache.Timeout:
            return False  # contention: the next attempt may take it

    return store.guard(attempt, None)

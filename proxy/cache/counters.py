"""Hit, miss and render counts, shared by the workers, written at most once a second.

The totals are entries of the cache itself (``stat:`` keys, never culled). A render is counted
where it happens, one write among the others of a miss; hits and misses are kept per worker
and added to the shared totals at most once a second, and a second after the last one at the
latest, since a write per hit would cost what the read-only hits of the eviction policy save
(store.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

STAT_PREFIX = "stat:"
RENDERS, HITS, MISSES = (STAT_PREFIX + name for name in ("renders", "hits", "misses"))


class Counters:
    """This worker's hits and misses not yet added to the shared totals, and their flushing."""

    def __init__(self, add: Callable[[Mapping[str, int]], None]) -> None:
        self._add = add  # adds counts to the shared totals (Store.add)
        self._lock = threading.Lock()
        self._counts = {HITS: 0, MISSES: 0}  # not yet added to the shared totals
        self._flushed = time.monotonic()
        self._later: threading.Timer | None = None  # a flush due in a second

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1
            due = time.monotonic() - self._flushed > 1.0
            later = not due and self._later is None
            if later:  # counted after a flush: make sure it is added even if no request follows
                self._later = threading.Timer(1.0, self.flush)
                self._later.daemon = True
        if due:
            self.flush()
        elif later:
            assert self._later is not None
            self._later.start()

    def flush(self) -> None:
        """Add this worker's counts to the shared totals: one write a second, not one per hit, and
        a second after the last one at the latest, so an idle worker's counts reach cache stats."""
        with self._lock:
            self._later = None
            self._flushed = time.monotonic()
            counts, self._counts = self._counts, dict.fromkeys(self._counts, 0)
        if any(counts.values()):
            self._add(counts)

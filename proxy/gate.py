"""The transform gate: how many transforms run at once, and which misses are refused.

At most ``slots`` transforms run at once on an instance (one per core: more would only
share the cores). A miss that finds every slot taken queues for one, and is refused (503
with Retry-After) only when waiting would take too long:

- at once, when the instance's expected wait already exceeds ``wait`` seconds: misses
  waiting ahead of it x the recent median transform time / slots;
- after ``wait`` seconds in the queue without a slot;
- at once, when its worker already has ``queue`` misses waiting. This is a safeguard, not
  the limit a burst meets: gunicorn runs each worker with more threads than that
  (gunicorn.conf.py), so every worker keeps threads free for hits and 304s, which never
  pass through the gate and so never wait behind misses.

So a page's burst of new sizes waits a fraction of a second and is answered, while load
the instance cannot serve within ``wait`` is refused up front, with a Retry-After that is
the expected wait.

Across workers (processes) the slots are ``flock``s on small files, which the kernel
releases the moment a holder dies, so a killed worker never leaks capacity. Each worker
publishes how many misses it has waiting and its recent median transform time on a small
shared board (an mmap'd file), one entry per worker; entries of dead workers are ignored.
Within a worker, waiting misses form a FIFO line and only its head polls the slots, so
waiting costs no CPU; a miss that arrives while others wait queues behind them instead of
taking the next free slot first.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import mmap
import os
import statistics
import struct
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import Overloaded
from .metrics import QUEUE_WAIT_SECONDS, QUEUED

POLL = 0.002  # seconds between a line head's attempts at a slot
RECENT = 32  # transform times a worker's median is taken over
MAX_WORKERS = 512  # entries on the board
_ENTRY = struct.Struct("=qqd")  # pid, misses waiting, median transform seconds


class TransformGate:
    """Slots for the transforms of one instance, shared by all its workers."""

    def __init__(self, directory: Path, slots: int, queue: int, wait: float) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._slots = [directory / f"slot-{i}" for i in range(slots)]
        self._board_path = directory / "board"
        self.queue = queue  # misses waiting per worker, at most
        self.wait = wait  # seconds a miss may wait for a slot
        self._worker: _Worker | None = None  # this process's state, made after the fork
        self._joining = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a transform slot for the block, or raise ``Overloaded`` (with its reason)."""
        worker = self._this_worker()
        waiting, median = worker.board.totals()
        held = _lock_any(self._slots) if waiting == 0 else None  # nobody waits: no queue to join
        if held is None:
            held = self._queue(worker, waiting, median)
        started = time.monotonic()
        try:
            yield
        finally:
            os.close(held)  # closing the descriptor releases the lock
            worker.record(time.monotonic() - started)

    def expected_wait(self) -> float:
        """Seconds a miss arriving now would wait: queue length x median transform time / slots."""
        waiting, median = self._this_worker().board.totals()
        return waiting * median / len(self._slots)

    def _queue(self, worker: _Worker, waiting: int, median: float) -> int:
        expected = waiting * median / len(self._slots)
        if expected > self.wait:
            raise _refusal("expected_wait", expected, "the queue of images to process is too long")
        if worker.waiting() >= self.queue:
            raise _refusal("queue_full", expected, "too many images waiting to be processed")
        arrived = time.monotonic()
        deadline = arrived + self.wait
        with worker.in_line() as turn:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not turn.wait(remaining):
                    raise _refusal("waited", self.expected_wait(), "waited too long to be processed")
                held = _lock_any(self._slots)
                if held is not None:
                    QUEUE_WAIT_SECONDS.observe(time.monotonic() - arrived)
                    return held
                time.sleep(min(POLL, max(remaining, 0)))

    def _this_worker(self) -> _Worker:
        worker = self._worker
        if worker is None or worker.pid != os.getpid():  # first use, or first after a fork
            with self._joining:
                worker = self._worker
                if worker is None or worker.pid != os.getpid():  # no other thread was first
                    worker = self._worker = _Worker(_Board(self._board_path))
        return worker


class _Worker:
    """One process's part of the gate: its line of waiting misses and its recent times."""

    def __init__(self, board: _Board) -> None:
        self.pid = os.getpid()
        self.board = board
        self._lock = threading.Lock()
        self._line: deque[threading.Event] = deque()  # first: the head, which polls the slots
        self._times: deque[float] = deque(maxlen=RECENT)
        self._median = 0.0
        self._entry = board.join(self.pid)

    def waiting(self) -> int:
        return len(self._line)

    @contextmanager
    def in_line(self) -> Iterator[threading.Event]:
        """Stand in this worker's line; the event is set when it is our turn to poll."""
        turn = threading.Event()
        with self._lock:
            self._line.append(turn)
            if self._line[0] is turn:
                turn.set()
            self._publish()
        QUEUED.inc()
        try:
            yield turn
        finally:
            QUEUED.dec()
            with self._lock:
                self._line.remove(turn)
                if self._line:
                    self._line[0].set()
                self._publish()

    def record(self, seconds: float) -> None:
        with self._lock:
            self._times.append(seconds)
            self._median = statistics.median(self._times)
            self._publish()

    def _publish(self) -> None:
        self.board.publish(self._entry, self.pid, len(self._line), self._median)


class _Board:
    """The instance's shared board: per worker, its pid, misses waiting and median time."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _ENTRY.size * MAX_WORKERS:
                os.ftruncate(fd, _ENTRY.size * MAX_WORKERS)
            self._map = mmap.mmap(fd, _ENTRY.size * MAX_WORKERS)
        finally:
            os.close(fd)
        self._path = path

    def join(self, pid: int) -> int:
        """Claim an entry (free, or left by a dead worker) for ``pid``; returns its index."""
        with open(self._path, "rb") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)  # one joiner at a time; held for microseconds
            entries = list(self._entries())
            reusable = (i for i, (owner, _, _) in entries if owner == pid or not alive(owner))
            # past the used entries, or the last one shared, approximately, by any workers beyond
            free = next(reusable, min(len(entries), MAX_WORKERS - 1))
            self.publish(free, pid, 0, 0.0)
            return free

    def publish(self, index: int, pid: int, waiting: int, median: float) -> None:
        _ENTRY.pack_into(self._map, index * _ENTRY.size, pid, waiting, median)

    def totals(self) -> tuple[int, float]:
        """Misses waiting on the instance, and the median of its workers' recent medians."""
        waiting = 0
        medians = []
        for _, (pid, count, median) in self._entries():
            if pid and alive(pid):
                waiting += count
                if median > 0:
                    medians.append(median)
        return waiting, statistics.median(medians) if medians else 0.0

    def _entries(self) -> Iterator[tuple[int, tuple[int, int, float]]]:
        for index in range(MAX_WORKERS):
            entry = _ENTRY.unpack_from(self._map, index * _ENTRY.size)
            if entry[0] == 0:
                return  # entries are claimed from the front: the rest are unused
            yield index, entry


def _refusal(reason: str, expected: float, message: str) -> Overloaded:
    return Overloaded(f"{message}; try again later", reason=reason, retry_after=max(1, math.ceil(expected)))


def gate_directory(cache_dir: Path) -> Path:
    """Where an instance's gate files live: one place per cache directory, outside it."""
    tag = hashlib.sha256(str(cache_dir.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"image-origin-gate-{os.getuid()}-{tag}"


def _lock_any(paths: list[Path]) -> int | None:
    """A descriptor holding an exclusive flock on the first free file of ``paths``, or None."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # a tmp cleaner removed the directory
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

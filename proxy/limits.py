"""Resource limits: what an original and a result may cost, and how many transforms run at once.

Checked before the expensive work they guard: bytes and declared pixels before
decoding, output pixels before decoding, a transform slot before rendering,
and the deadline between pipeline stages (OpenCV calls cannot be interrupted,
so a stage that started finishes, but no further stage starts).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import Overloaded
from .settings import Settings


@dataclass(frozen=True)
class Limits:
    max_source_pixels: int = Settings.max_source_pixels  # defaults are the settings' own
    max_source_bytes: int = Settings.max_source_bytes
    max_output_pixels: int = Settings.max_output_pixels
    deadline: float | None = None  # time.monotonic() after which no stage starts

    @classmethod
    def from_settings(cls, settings: Settings, deadline: float | None = None) -> Limits:
        return cls(
            settings.max_source_pixels, settings.max_source_bytes, settings.max_output_pixels, deadline
        )

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Overloaded("processing took too long; try again later")


class TransformGate:
    """At most ``slots`` transforms at once on this machine, and at most ``queue`` misses waiting.

    Workers are processes, so slots and queue places are ``flock``s on small files
    that every worker of the instance opens: the kernel releases a lock the moment
    its holder dies, so a killed worker can never leak capacity. A miss that finds
    the queue full, or waits ``wait`` seconds without a slot, is answered 503 with
    Retry-After. With more workers than slots plus queue (gunicorn.conf.py), some
    workers are always free for hits and 304s, which never pass through the gate.
    """

    def __init__(self, directory: Path, slots: int, queue: int, wait: float) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._slots = [directory / f"slot-{i}" for i in range(slots)]
        self._queue = [directory / f"queue-{i}" for i in range(queue)]
        self._wait = wait

    @contextmanager
    def slot(self) -> Iterator[None]:
        held = _lock_any(self._slots)
        if held is None:
            held = self._wait_in_queue()
        try:
            yield
        finally:
            os.close(held)  # closing the descriptor releases the lock

    def _wait_in_queue(self) -> int:
        place = _lock_any(self._queue)
        if place is None:
            raise Overloaded("too many images being processed; try again shortly")
        try:
            deadline = time.monotonic() + self._wait
            while (held := _lock_any(self._slots)) is None:
                if time.monotonic() > deadline:
                    raise Overloaded("too many images being processed; try again shortly")
                time.sleep(0.005)
            return held
        finally:
            os.close(place)


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

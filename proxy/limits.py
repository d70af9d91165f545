"""Resource limits: what an original and a result may cost, and how many transforms run at once.

Checked before the expensive work they guard: bytes and declared pixels before
decoding, output pixels before decoding, a transform slot before rendering,
and the deadline between pipeline stages (OpenCV calls cannot be interrupted,
so a stage that started finishes, but no further stage starts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import Overloaded
from .settings import Settings


@dataclass(frozen=True)
class Limits:
    max_source_pixels: int = 50_000_000
    max_source_bytes: int = 50_000_000
    max_output_pixels: int = 50_000_000
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
    """At most ``slots`` transforms at once in this worker; a miss waits ``wait`` seconds, then 503.

    With threaded workers, hits and 304s never pass through the gate, so they are not held
    up behind transforms; the bounded wait keeps misses from queueing without limit.
    """

    def __init__(self, slots: int, wait: float) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._wait = wait

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self._wait):
            raise Overloaded("too many images being processed; try again shortly")
        try:
            yield
        finally:
            self._slots.release()

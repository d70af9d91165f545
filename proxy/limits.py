"""Resource limits: what an original and a result may cost, and how long a transform may take.

Also how hard the WebP encoder works (``webp_effort``): the one encoder cost an operator sets.

Checked before the expensive work they guard: bytes and declared pixels before
decoding, output pixels before decoding, and the deadline between pipeline
stages (OpenCV calls cannot be interrupted, so a stage that started finishes,
but no further stage starts). How many transforms run at once is gate.py's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .errors import Overloaded
from .settings import Settings


@dataclass(frozen=True)
class Limits:
    max_source_pixels: int = Settings.max_source_pixels  # defaults are the settings' own
    max_source_bytes: int = Settings.max_source_bytes
    max_output_pixels: int = Settings.max_output_pixels
    deadline: float | None = None  # time.monotonic() after which no stage starts
    max_animation_frames: int = Settings.max_animation_frames
    webp_effort: int = Settings.webp_effort

    @classmethod
    def from_settings(cls, settings: Settings, deadline: float | None = None) -> Limits:
        return cls(
            settings.max_source_pixels,
            settings.max_source_bytes,
            settings.max_output_pixels,
            deadline,
            settings.max_animation_frames,
            settings.webp_effort,
        )

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Overloaded("processing took too long; try again later", reason="deadline")

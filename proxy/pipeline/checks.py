"""Limits before work: what the original declares (413) and what the plan would produce (400),
both checked before a pixel is decoded."""

from __future__ import annotations

from ..errors import InvalidParameter, SourceTooLarge
from ..limits import Limits
from ..params import ImageParams
from ..probe import SourceInfo
from .geometry import Geometry

DEFAULT_LIMITS = Limits()  # the settings' defaults, for callers that pass none (tests, bench, the CLI)


def check_source(info: SourceInfo, limits: Limits) -> None:
    """413 for an original over the byte or declared-pixel limits (a decompression bomb)."""
    if info.frames > limits.max_animation_frames:
        raise SourceTooLarge(
            f"the original declares {info.frames} frames, over the limit of {limits.max_animation_frames}"
        )
    # A vector's declared size costs nothing: what it is drawn at does (check_drawn).
    if (
        not info.vector
        and info.width
        and info.height
        and info.pixels * info.frames > limits.max_source_pixels
    ):
        coded = f", coded in {info.coded_pixels} pixels" if info.pixels > info.width * info.height else ""
        raise SourceTooLarge(
            f"the original declares {info.frames} frame(s) of {info.width}x{info.height} pixels{coded}, "
            f"over the limit of {limits.max_source_pixels}"
        )
    if info.bytes > limits.max_source_bytes:
        raise SourceTooLarge(
            f"the original has {info.bytes} bytes, over the limit of {limits.max_source_bytes}"
        )


def check_drawn(canvas: tuple[int, int], limits: Limits) -> None:
    """413 for a vector original drawn on a canvas over PROXY_MAX_SOURCE_PIXELS: its pixels,
    allocated as a raster original's decoded ones are, before it is drawn."""
    width, height = canvas
    if width * height > limits.max_source_pixels:
        raise SourceTooLarge(
            f"the SVG would be drawn at {width}x{height} pixels, over the limit of {limits.max_source_pixels}"
        )


def check_output(
    geometry: Geometry, limits: Limits, frames: int = 1, params: ImageParams | None = None
) -> None:
    """400 for a result over PROXY_MAX_OUTPUT_PIXELS, naming the size parameter that was sent."""
    width, height = geometry.canvas or (geometry.crop[2:] if geometry.crop else geometry.size)
    if width * height * frames > limits.max_output_pixels:
        size = f"{width}x{height}" + (f" x {frames} frames" if frames > 1 else "")
        asked = params is not None and (params.width is not None or params.height is not None)
        name = "h" if params is not None and params.width is None and params.height is not None else "w"
        advice = "ask for less" if asked else "no w or h was given, so it is the original's size: ask for one"
        raise InvalidParameter(
            name, f"the result would be {size}, over {limits.max_output_pixels} pixels; {advice}"
        )

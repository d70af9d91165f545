"""Animated originals: every frame through the steps, planned once, or one frame as a still.

An animation stays one when its output format's encoder writes animations (encode.ENCODERS) and no
``frame`` is asked for; otherwise a still is served: the first frame as the decoder reads it, or
frame N (``?frame=N``) composed as a viewer shows it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from ..errors import InvalidParameter, OverBudget, SourceTooLarge, UnsupportedImage
from ..formats import Format
from ..limits import Limits
from ..params import ImageParams
from ..probe import SourceInfo
from .budget import FLOOR, highest
from .checks import check_output
from .decode import Decoded, read_original
from .edits import trimmed
from .encode import ENCODERS, encode_animation
from .geometry import Plan, oriented_size, plan_geometry
from .pixels import Image, has_alpha, with_channels
from .steps import STEPS, cut, orient, resize, smart_crop


def animates(info: SourceInfo, params: ImageParams, output: Format) -> bool:
    """Whether an original is served as an animation: WebP and AVIF animate; JPEG and PNG
    (and ``?frame=N``) take one frame."""
    return info.frames > 1 and params.frame is None and ENCODERS[output.name].animation is not None


def animate(
    path: str,
    info: SourceInfo,
    params: ImageParams,
    output: Format,
    limits: Limits,
    overlay: Image | None = None,
) -> bytes:
    """Every frame through STEPS, planned once; durations and loop count kept; ``overlay``: the
    watermark drawn on each."""
    declared = oriented_size(info)
    if declared is None:
        raise UnsupportedImage(f"the {info.format.upper()} animation declares no size")
    geometry = plan_geometry(*declared, params)
    plan = Plan.of(geometry, info.orientation, output, params, info.profile, declared, overlay=overlay)
    check_output(plan.geometry, limits, info.frames, params)
    data = np.frombuffer(read_original(path), np.uint8)
    try:
        ok, animation = cv2.imdecodeanimation(data, 0, limits.max_animation_frames + 1)
    except (cv2.error, MemoryError):
        ok = False
    if not ok or not animation.frames:
        raise UnsupportedImage(f"could not decode the {info.format.upper()} animation")
    if len(animation.frames) > limits.max_animation_frames:  # the header said fewer
        raise SourceTooLarge(f"the original has over {limits.max_animation_frames} frames")
    if params.trim is not None:  # one border for every frame: what none of them needs
        plan = replace(
            plan, geometry=plan_geometry(*declared, _trim_all(animation.frames, info, declared, params))
        )
        geometry = plan.geometry
    if geometry.smart:  # one window for every frame, found in the first, so the subject holds still
        first = orient(resize(cut(animation.frames[0], plan), plan), plan)
        plan = replace(plan, geometry=replace(geometry, crop=smart_crop(first, geometry), smart=None))
    frames = []
    for frame in animation.frames:
        for step in STEPS:
            frame = step(frame, plan)
        # One layout for every frame, and contiguous: the animation encoder ignores a crop's strides.
        frames.append(np.ascontiguousarray(with_channels(frame, 4)))
        limits.check_deadline()
    result = cv2.Animation()
    result.frames = frames
    result.durations = animation.durations
    plays = info.plays if info.plays is not None else animation.loop_count  # OpenCV reads no AVIF's
    result.loop_count = plays
    answer = encode_animation(result, output, params.quality, plays)
    if params.maxbytes is not None and len(answer) > params.maxbytes:  # the quality alone may give
        encoded = functools.partial(encode_animation, result, output, plays=plays)
        answer = highest(lambda q: encoded(quality=q), FLOOR, params.quality - 1, params.maxbytes) or b""
        if not answer:
            raise OverBudget(f"maxbytes: no {output.name} of this animation fits in {params.maxbytes} bytes")
    return answer


def _trim_all(
    frames: Sequence[Image], info: SourceInfo, size: tuple[int, int], params: ImageParams
) -> ImageParams:
    """``params`` with ``trim`` made a ``rect``: the union of what each frame keeps."""
    found = [trimmed(frame, info.orientation, size, params.rect, params.trim or 0) for frame in frames]
    kept = [bounds for bounds in found if bounds is not None]
    if not kept:
        return replace(params, trim=None)
    left, top = min(b[0] for b in kept), min(b[1] for b in kept)
    right, bottom = max(b[0] + b[2] for b in kept), max(b[1] + b[3] for b in kept)
    return replace(params, trim=None, rect=(left, top, right - left, bottom - top))


def decode_frame(path: str, info: SourceInfo, frame: int) -> Decoded:
    """Frame ``frame`` of an animation (0-based), composed as a viewer shows it, as a still."""
    if frame >= info.frames:
        raise InvalidParameter("frame", f"the original has {info.frames} frame{'s' * (info.frames > 1)}")
    data = np.frombuffer(read_original(path), np.uint8)
    try:
        ok, animation = cv2.imdecodeanimation(data, frame, 1)
    except (cv2.error, MemoryError):
        ok = False
    if not ok or not animation.frames:
        raise UnsupportedImage(f"could not decode frame {frame} of the {info.format.upper()} source")
    image: Image = animation.frames[0]
    return Decoded(image if has_alpha(image) else image[..., :3])

"""The process environment beyond ``Settings``: OpenCV's own limits, and ``PROXY_*`` names that are no
setting. Like ``Settings.from_env``, these read ``os.environ`` only when not given a mapping."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from dataclasses import fields

from .base import PREFIX, env_name
from .model import Settings


def opencv_limits(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """OpenCV's own decoder limits, made to agree with ours.

    OpenCV reads ``OPENCV_IO_MAX_IMAGE_*`` from the environment once, when ``cv2`` is first
    imported, so ``configure_opencv`` must run before that; a deployer's explicit value wins.
    """
    env = os.environ if environ is None else environ
    raw = env.get(PREFIX + "MAX_SOURCE_PIXELS", "").strip()
    # Runs when the package is imported, before logging exists: a malformed value is left for
    # Settings.from_env to refuse, naming it, rather than fail here with nobody to say so.
    pixels = int(raw) if raw.isascii() and raw.isdigit() else Settings.max_source_pixels
    limits = {
        "OPENCV_IO_MAX_IMAGE_PIXELS": str(pixels),  # width and height keep OpenCV's 2^20 each
        # Undecodable input becomes a 415 here; OpenCV logging each one would let anybody fill the log.
        "OPENCV_LOG_LEVEL": "FATAL",
    }
    return {name: env.get(name, value) for name, value in limits.items()}


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``PROXY_*`` variable that is no setting (a misspelling is otherwise
    silently ignored), with the closest setting's name."""
    env = os.environ if environ is None else environ
    known = [env_name(setting) for setting in fields(Settings)]
    warnings = []
    for name in sorted(env):
        if name.startswith(PREFIX) and name not in known:
            closest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {closest[0]}?" if closest else ""
            warnings.append(f"warning: {name} is not a setting and is ignored{hint}")
    return warnings


def configure_opencv() -> bool:
    """Export ``opencv_limits()``; False if cv2 was imported too early for them to apply."""
    os.environ.update(opencv_limits())
    return "cv2" not in sys.modules

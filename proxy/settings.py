"""Settings: read once from the environment at startup, frozen, validated.

This is the only module that reads ``os.environ``. Everything else receives a
``Settings`` value, so tests build their own without touching the process
environment, and a bad deployment fails at boot with a message that names the
offending variable instead of failing later on some request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

PREFIX = "PROXY_"
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"

_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_SIZE_RE = re.compile(r"([0-9]+)\s*([A-Za-z]*)")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything a deployer can set, with its unit and default."""

    image_root: Path = SAMPLES_DIR  # directory holding the originals
    cache_dir: Path = Path("cache_dir")  # diskcache directory, shared by all workers
    cache_size: int = 2**30  # bytes; the cache directory's upper bound
    max_age: int = 86400  # seconds, for Cache-Control: max-age
    max_dimension: int = 8192  # pixels; largest w or h accepted, after dpr

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``SettingsError`` naming the first field that is out of range."""
        if not self.image_root.is_dir():
            raise SettingsError(f"{PREFIX}IMAGE_ROOT: {self.image_root} is not a directory")
        if self.cache_size < 16 << 20:
            raise SettingsError(f"{PREFIX}CACHE_SIZE: {self.cache_size} bytes is below 16 MiB")
        if self.max_age < 0:
            raise SettingsError(f"{PREFIX}MAX_AGE: must be >= 0 seconds, got {self.max_age}")
        if not 1 <= self.max_dimension <= 65500:
            raise SettingsError(f"{PREFIX}MAX_DIMENSION: must be within 1..65500, got {self.max_dimension}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults, overridden by ``PROXY_<FIELD>`` variables, then validated."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            name = PREFIX + field.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[field.name] = _PARSERS[field.name](name, raw.strip())
        return cls(**values)  # type: ignore[arg-type]


def parse_size(name: str, raw: str) -> int:
    """``1073741824``, ``500MB`` or ``2GiB`` -> bytes (SI and IEC units)."""
    match = _SIZE_RE.fullmatch(raw)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise SettingsError(f"{name}: expected bytes like 1073741824, 500MB or 2GiB, got {raw!r}")
    return int(match.group(1)) * _SIZE_UNITS[unit]


def _parse_int(name: str, raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise SettingsError(f"{name}: expected a non-negative integer, got {raw!r}")
    return int(raw)


def _parse_path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


_PARSERS = {
    "image_root": _parse_path,
    "cache_dir": _parse_path,
    "cache_size": parse_size,
    "max_age": _parse_int,
    "max_dimension": _parse_int,
}

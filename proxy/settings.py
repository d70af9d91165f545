"""Settings: read once from the environment at startup, frozen, validated.

This is the only module that reads ``os.environ``. Everything else receives a
``Settings`` value, so tests build their own without touching the process
environment, and a bad deployment fails at boot with a message that names the
offending variable instead of failing later on some request.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

PREFIX = "PROXY_"
MIN_TOKEN = 16  # bytes a secret or token must have: shorter ones can be guessed
# Variables whose empty value means something (turn off, or refuse to boot), not "the default".
_EMPTY_COUNTS = ("secret", "secret_previous", "purge_token", "cors_origins", "tag_headers")
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
_PRESET_RE = re.compile(r"[a-z0-9_-]{1,32}")
Presets = Mapping[str, tuple[tuple[str, str], ...]]  # name -> query parameters, in order
SCHEMES = ("file", "s3", "http", "https")


class Mount(NamedTuple):
    """Ids starting with ``prefix`` are looked up at ``url`` (file://dir, s3://bucket/prefix, http(s)://)."""

    prefix: str
    scheme: str
    location: str  # file: the directory; s3: bucket/key prefix; http(s): the base URL, ending in /


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything a deployer can set, with its unit and default."""

    image_root: Path = SAMPLES_DIR  # directory holding the originals, when source is not set
    source: tuple[Mount, ...] = ()  # where originals live, by id prefix; empty: image_root
    source_ttl: float = 60.0  # seconds a remote original's version is trusted before revalidating
    source_cache_size: int = 2**30  # bytes of local copies of remote originals
    fetch_timeout: float = 10.0  # seconds for an upstream fetch: to connect, and in all
    url_hosts: tuple[str, ...] = ()  # hosts /url/ may fetch from (example.com, *.example.com, *); none: off
    allow_private_addresses: bool = False  # let fetches reach loopback and private networks
    cache_dir: Path = Path("cache_dir")  # diskcache directory, shared by all workers
    cache_size: int = 2**30  # bytes; the cache directory's upper bound
    memory_cache_size: int = 32 << 20  # bytes of small variants each worker also keeps in memory
    max_age: int = 86400  # seconds, for Cache-Control: max-age
    stale_while_revalidate: int = 60  # seconds a cache may serve a stale copy while it revalidates
    stale_if_error: int = 86400  # seconds a cache may serve a stale copy while the origin fails
    tag_headers: tuple[str, ...] = ("Surrogate-Key", "Cache-Tag")  # where cache tags go (purge.py)
    cors_origins: tuple[str, ...] = ("*",)  # Access-Control-Allow-Origin: any, these, or none (empty)
    auto_formats: tuple[str, ...] = ("avif", "webp")  # fmt=auto's preference, first accepted wins
    webp_effort: int = 4  # libwebp's method, 0..6: lower encodes faster, into more bytes (stills)
    max_dimension: int = 8192  # pixels; largest w or h accepted, after dpr
    max_source_pixels: int = 50_000_000  # pixels an original may declare (width x height)
    max_source_bytes: int = 50_000_000  # bytes an original file may have
    max_output_pixels: int = 50_000_000  # pixels a result may have (all frames of an animation)
    max_animation_frames: int = 100  # frames an animated original may declare
    secret: str | None = field(default=None, repr=False)  # HMAC key; set: every URL must be signed
    secret_previous: str | None = field(default=None, repr=False)  # still accepted, while rotating
    presets: Presets = field(default_factory=lambda: MappingProxyType({}))  # named parameter sets
    presets_only: bool = False  # refuse anything but ?preset=<name>
    purge_token: str | None = field(default=None, repr=False)  # set: PURGE with this bearer token
    playground: bool = False  # the playground page at / (make serve turns it on)
    playground_sign: bool = False  # with PROXY_SECRET: the playground signs URLs for anyone who opens it
    error_image: bool = False  # answer a browser's failed image request with a placeholder image
    max_transforms: int = field(default_factory=lambda: os.cpu_count() or 1)  # at once, per instance
    transform_queue: int = 48  # misses waiting per worker, at most: a safeguard (gunicorn.conf.py threads)
    transform_wait: float = 10.0  # seconds a miss may wait for a transform slot, expected or actual
    transform_deadline: float = 20.0  # seconds a transform may take before it is abandoned (503)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``SettingsError`` naming the first field that is out of range."""
        if not self.source and not self.image_root.is_dir():
            raise SettingsError(f"{PREFIX}IMAGE_ROOT: {self.image_root} is not a directory")
        for mount in self.source:
            if mount.scheme == "file" and not Path(mount.location).is_dir():
                raise SettingsError(f"{PREFIX}SOURCE: {mount.location} is not a directory")
        if self.source_cache_size < 16 << 20:
            raise SettingsError(f"{PREFIX}SOURCE_CACHE_SIZE: {self.source_cache_size} bytes is below 16 MiB")
        for name in ("source_ttl", "fetch_timeout"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{PREFIX}{name.upper()}: must be a positive number of seconds")
        if self.cache_size < 16 << 20:
            raise SettingsError(f"{PREFIX}CACHE_SIZE: {self.cache_size} bytes is below 16 MiB")
        if self.memory_cache_size < 0:
            raise SettingsError(f"{PREFIX}MEMORY_CACHE_SIZE: must be >= 0, got {self.memory_cache_size}")
        for name in ("max_age", "stale_while_revalidate", "stale_if_error"):
            if getattr(self, name) < 0:
                raise SettingsError(
                    f"{PREFIX}{name.upper()}: must be >= 0 seconds, got {getattr(self, name)}"
                )
        for name in ("secret", "secret_previous", "purge_token"):  # set, but empty or guessable
            value = getattr(self, name)
            if value is not None and len(value.strip().encode()) < MIN_TOKEN:
                raise SettingsError(
                    f"{PREFIX}{name.upper()}: must be at least {MIN_TOKEN} bytes, not blank "
                    f"(got {len(value.strip().encode())}); make one with: openssl rand -hex 24"
                )
        if not 0 <= self.webp_effort <= 6:
            raise SettingsError(f"{PREFIX}WEBP_EFFORT: must be within 0..6, got {self.webp_effort}")
        if not 1 <= self.max_dimension <= 65500:
            raise SettingsError(f"{PREFIX}MAX_DIMENSION: must be within 1..65500, got {self.max_dimension}")
        for name in (
            "max_source_pixels",
            "max_source_bytes",
            "max_output_pixels",
            "max_animation_frames",
            "max_transforms",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()}: must be at least 1, got {getattr(self, name)}")
        if self.transform_queue < 0:
            raise SettingsError(f"{PREFIX}TRANSFORM_QUEUE: must be at least 0, got {self.transform_queue}")
        for name in ("transform_wait", "transform_deadline"):
            if not getattr(self, name) > 0:
                raise SettingsError(f"{PREFIX}{name.upper()}: must be a positive number of seconds")
        if self.secret_previous and not self.secret:
            raise SettingsError(f"{PREFIX}SECRET_PREVIOUS: set only together with {PREFIX}SECRET")
        if self.presets_only and not self.presets:
            raise SettingsError(f"{PREFIX}PRESETS_ONLY: needs {PREFIX}PRESETS to define at least one preset")

    @property
    def mounts(self) -> tuple[Mount, ...]:
        """The source's mounts, longest prefix first; without PROXY_SOURCE, the image root."""
        mounts = self.source or (Mount("", "file", str(self.image_root)),)
        return tuple(sorted(mounts, key=lambda mount: len(mount.prefix), reverse=True))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults, overridden by ``PROXY_<FIELD>`` variables, then validated."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for known in fields(cls):
            name = PREFIX + known.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "" and known.name not in _EMPTY_COUNTS:
                continue
            values[known.name] = _PARSERS[known.name](name, raw.strip())
        return cls(**values)  # type: ignore[arg-type]


def parse_size(name: str, raw: str) -> int:
    """``1073741824``, ``500MB`` or ``2GiB`` -> bytes (SI and IEC units)."""
    match = _SIZE_RE.fullmatch(raw)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise SettingsError(f"{name}: expected bytes like 1073741824, 500MB or 2GiB, got {raw!r}")
    return int(match.group(1)) * _SIZE_UNITS[unit]


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
    known = [PREFIX + setting.name.upper() for setting in fields(Settings)]
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


def _parse_int(name: str, raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise SettingsError(f"{name}: expected a non-negative integer, got {raw!r}")
    return int(raw)


def _parse_path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def _parse_seconds(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected seconds, got {raw!r}") from None


def _parse_bool(name: str, raw: str) -> bool:
    if raw.lower() not in ("0", "1", "true", "false", "yes", "no"):
        raise SettingsError(f"{name}: expected 1 or 0, got {raw!r}")
    return raw.lower() in ("1", "true", "yes")


def _parse_text(name: str, raw: str) -> str:
    return raw


def parse_origins(name: str, raw: str) -> tuple[str, ...]:
    """``*``, or ``https://a.example,https://b.example``; empty or ``none``: no CORS headers."""
    if raw.strip().lower() in ("", "none"):
        return ()
    origins = tuple(filter(None, (part.strip().rstrip("/") for part in raw.split(","))))
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
            raise SettingsError(f"{name}: {origin!r}: expected * or origins like https://www.example.com")
    if "*" in origins and len(origins) > 1:
        raise SettingsError(f"{name}: * already allows every origin; give it alone")
    return origins


NEGOTIABLE = ("avif", "webp", "jxl")  # what PROXY_AUTO_FORMATS may list (one a build cannot write is skipped)


def parse_auto_formats(name: str, raw: str) -> tuple[str, ...]:
    """``avif,webp``, ``webp,avif``, ``jxl,avif,webp``...: what fmt=auto tries, in order."""
    formats = tuple(filter(None, (part.strip().lower() for part in raw.split(","))))
    if not formats or any(f not in NEGOTIABLE for f in formats) or len(set(formats)) != len(formats):
        raise SettingsError(
            f"{name}: expected some of {', '.join(NEGOTIABLE)} in order of preference, got {raw!r}"
        )
    return formats


def parse_header_names(name: str, raw: str) -> tuple[str, ...]:
    """``Surrogate-Key,Cache-Tag`` -> header names; ``none`` for no cache tags at all."""
    if raw.lower() == "none":
        return ()
    names = tuple(filter(None, (part.strip() for part in raw.split(","))))
    for header in names:
        if not re.fullmatch(r"[A-Za-z0-9-]+", header):
            raise SettingsError(f"{name}: {header!r} is not a header name")
    return names


def parse_hosts(name: str, raw: str) -> tuple[str, ...]:
    """``images.example.com,*.cdn.example.net`` or ``*``: host names, with ``*.`` for subdomains."""
    hosts = tuple(filter(None, (part.strip().lower() for part in raw.split(","))))
    for host in hosts:
        if host != "*" and not re.fullmatch(r"(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*", host):
            raise SettingsError(f"{name}: {host!r}: expected a host name, *.domain or *")
    return hosts


def parse_source(name: str, raw: str) -> tuple[Mount, ...]:
    """``s3://bucket/prefix`` or ``products/=s3://b/p/,legacy/=https://host/img/,=file:///srv``."""
    mounts: list[Mount] = []
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        prefix, _, url = entry.partition("=") if "=" in entry.split("://")[0] else ("", "", entry)
        scheme, separator, rest = url.partition("://")
        if not separator or scheme not in SCHEMES:
            raise SettingsError(f"{name}: {url!r}: expected a file://, s3:// or http(s):// URL")
        if prefix and (prefix.startswith("/") or ".." in prefix.split("/") or not prefix.endswith("/")):
            raise SettingsError(f"{name}: mount prefix {prefix!r} must be relative and end with /")
        if any(mount.prefix == prefix for mount in mounts):
            raise SettingsError(f"{name}: mount prefix {prefix!r} given twice")
        if scheme == "file":
            location = str(Path(rest).expanduser())
        elif scheme == "s3":
            bucket = rest.split("/", 1)[0]
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
                raise SettingsError(f"{name}: {url!r}: no valid bucket name")
            location = rest
        else:
            host = rest.split("/", 1)[0]
            if not host or any(c in host for c in "@?#"):
                raise SettingsError(f"{name}: {url!r}: no host")
            location = url if url.endswith("/") else url + "/"
        mounts.append(Mount(prefix, scheme, location))
    if not mounts:
        raise SettingsError(f"{name}: no source given")
    return tuple(mounts)


def parse_presets(name: str, raw: str) -> Presets:
    """``thumb=w:200,h:200,fit:cover;hero=w:1600,q:75`` -> {"thumb": (("w", "200"), ...), ...}.

    A value may hold commas (``fp:0.3,0.7``, ``rect:0,0,800,600``): an item without a colon
    continues the value before it.
    """
    presets: dict[str, tuple[tuple[str, str], ...]] = {}
    for entry in filter(None, (part.strip() for part in raw.split(";"))):
        label, _, body = entry.partition("=")
        label = label.strip()
        if not _PRESET_RE.fullmatch(label) or label in presets:
            raise SettingsError(f"{name}: bad or repeated preset name {label!r}")
        items: list[str] = []
        for item in filter(None, (part.strip() for part in body.split(","))):
            if ":" in item or not items:
                items.append(item)
            else:
                items[-1] += "," + item
        pairs = tuple(tuple(item.split(":", 1)) for item in items)
        if not pairs or any(len(pair) != 2 or not all(pair) for pair in pairs):
            raise SettingsError(f"{name}: preset {label!r}: expected key:value pairs, got {body!r}")
        presets[label] = pairs  # type: ignore[assignment]
    return MappingProxyType(presets)


_PARSERS = {
    "image_root": _parse_path,
    "source": parse_source,
    "source_ttl": _parse_seconds,
    "source_cache_size": parse_size,
    "fetch_timeout": _parse_seconds,
    "url_hosts": parse_hosts,
    "allow_private_addresses": _parse_bool,
    "cache_dir": _parse_path,
    "cache_size": parse_size,
    "memory_cache_size": parse_size,
    "max_age": _parse_int,
    "stale_while_revalidate": _parse_int,
    "stale_if_error": _parse_int,
    "tag_headers": parse_header_names,
    "cors_origins": parse_origins,
    "auto_formats": parse_auto_formats,
    "webp_effort": _parse_int,
    "max_dimension": _parse_int,
    "max_source_pixels": _parse_int,
    "max_source_bytes": parse_size,
    "max_output_pixels": _parse_int,
    "max_animation_frames": _parse_int,
    "secret": _parse_text,
    "secret_previous": _parse_text,
    "presets": parse_presets,
    "presets_only": _parse_bool,
    "purge_token": _parse_text,
    "playground": _parse_bool,
    "playground_sign": _parse_bool,
    "error_image": _parse_bool,
    "max_transforms": _parse_int,
    "transform_queue": _parse_int,
    "transform_wait": _parse_seconds,
    "transform_deadline": _parse_seconds,
}

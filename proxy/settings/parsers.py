"""Text -> value, one parser per kind of setting; each names the variable in its ``SettingsError``.

A parser is given the variable's name and its stripped text. Ranges are not checked here but by the
field's ``Bound`` (``base.py``), which also holds for a ``Settings`` built in code.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

from .base import Mount, Presets, SettingsError

SCHEMES = ("file", "s3", "http", "https")
NEGOTIABLE = ("avif", "webp", "jxl")  # what PROXY_AUTO_FORMATS may list (one a build cannot write is skipped)
SIZE_UNITS = {
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


def parse_size(name: str, raw: str) -> int:
    """``1073741824``, ``500MB`` or ``2GiB`` -> bytes (SI and IEC units)."""
    match = _SIZE_RE.fullmatch(raw)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in SIZE_UNITS:
        raise SettingsError(f"{name}: expected bytes like 1073741824, 500MB or 2GiB, got {raw!r}")
    return int(match.group(1)) * SIZE_UNITS[unit]


def parse_int(name: str, raw: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise SettingsError(f"{name}: expected a non-negative integer, got {raw!r}")
    return int(raw)


def parse_path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def parse_seconds(name: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected seconds, got {raw!r}") from None


def parse_bool(name: str, raw: str) -> bool:
    if raw.lower() not in ("0", "1", "true", "false", "yes", "no"):
        raise SettingsError(f"{name}: expected 1 or 0, got {raw!r}")
    return raw.lower() in ("1", "true", "yes")


def parse_text(name: str, raw: str) -> str:
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


def parse_result_store(name: str, raw: str) -> str:
    """``s3://bucket/prefix/`` or ``file:///absolute/path/``, ending with ``/``; empty: none."""
    raw = raw.strip()
    if not raw:
        return ""
    scheme, separator, rest = raw.partition("://")
    if scheme == "s3" and separator and rest and not rest.startswith("/"):
        return raw if raw.endswith("/") or "/" not in rest else raw + "/"
    if scheme == "file" and separator and rest.startswith("/") and ".." not in rest.split("/"):
        return raw if raw.endswith("/") else raw + "/"
    raise SettingsError(f"{name}: {raw!r}: expected s3://bucket/prefix/ or file:///absolute/path/")


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

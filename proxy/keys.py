"""Every cache key and cache tag, built in one place from plain values.

Imports nothing from the proxy (nor anything but the standard library), so that the storage
layer can name what it stores without loading the sources or the pipeline (and OpenCV with it).

Keys, by what they name (the ETag derives from the variant key: http.etag_for; no other key is
part of an answer). In the variant cache:

    variant_key   PIPELINE_VERSION|id|version|transform|format  a rendered variant
    kind_key      kind|PIPELINE_VERSION|id|version     an original version's header kind (app.declared_kind)
    reduced_key   reduced|PIPELINE_VERSION|id|version  a large original's reduced copy (pipeline/reduced.py)
    info_key      info|PIPELINE_VERSION|INFO_VERSION|id|version|gps  an original version's /info
                  document (proxy/info/), whose ETag derives from it as a variant's does

In the copies' cache of remote originals (sources/remote.py):

    copy_key      copy|id|version   a remote original's local copy: the only "copy" key
    record_key    record|id         its remembered version, ETag and dates
    missing_key   missing|id        its remembered absence upstream
    failed_key    failed|id         its remembered upstream failure

Tags name an original (``o-``) or a mount (``m-``) in the variant cache, the copies' cache and
the CDN headers (purge.py).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable

# Bump whenever the bytes produced for the same request change, or an answer once given must not be
# given again (11: truncated originals are refused; 12: animated AVIF without the encoder's clock;
# 13: HEIF and JPEG XL originals, 14: SVG originals, which older workers remembered as refused),
# so caches miss.
PIPELINE_VERSION = "14"
# Bump whenever the /info document of the same original changes (its fields, or how one is worked
# out); a new PIPELINE_VERSION is a new document too, since its thumbnail comes from the pipeline.
INFO_VERSION = "1"

KIND_PREFIX = "kind|"  # the variant cache counts these as bookkeeping, not entries
REDUCED_PREFIX = "reduced|"
INFO_PREFIX = "info|"
COPY_PREFIX = "copy|"
SURROGATE_KEY = "surrogate-key"  # the one tag header whose tags are separated by spaces


# --- keys ---------------------------------------------------------------------------------


def variant_key(
    image_id: str, version: str, transform: str, output: str, webp_effort: int | None = None
) -> str:
    """Everything that changes the bytes: pipeline, original and its version, transform
    (``ImageParams.transform``, canonical), and the format produced.

    ``output`` is the format produced (formats.resolve), not the one asked for, so ``fmt=webp``
    and ``fmt=auto`` answered with WebP are one variant, as are no ``fmt`` and ``fmt=jpeg`` for
    a JPEG original. ``webp_effort`` is a WebP method other than the encoder's default (None):
    other bytes, so another variant and another ETag.
    """
    if output == "webp" and webp_effort is not None:
        output += f"@m{webp_effort}"
    return "|".join((PIPELINE_VERSION, image_id, version, transform, output))


@functools.lru_cache(maxsize=4096)  # asked for every 200 built, and every read of the result tier
def key_hash(key: str) -> str:
    """32 hex digits of a hash of a variant key: its ETag (http.etag_for), and its name in the
    shared result tier (results/), the same on every instance."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def kind_key(image_id: str, version: str) -> str:
    """The key of an original version's header kind (app.declared_kind)."""
    return KIND_PREFIX + "|".join((PIPELINE_VERSION, image_id, version))


def reduced_key(image_id: str, version: str) -> str:
    """The key of an original's reduced copy (pipeline/reduced.py): one per version."""
    return REDUCED_PREFIX + "|".join((PIPELINE_VERSION, image_id, version))


def info_key(image_id: str, version: str, gps: bool = False) -> str:
    """The key of an original version's /info document, and so of its ETag: with or without
    its position (PROXY_INFO_GPS), which are two documents."""
    return INFO_PREFIX + "|".join((PIPELINE_VERSION, INFO_VERSION, image_id, version, "gps" if gps else "-"))


def copy_key(image_id: str, version: str) -> str:
    """The key of a remote original's local copy (sources/remote.py): one per upstream version."""
    return f"{COPY_PREFIX}{image_id}|{version}"


def record_key(image_id: str) -> str:
    """The key of what is remembered of a remote original: its version, ETag, dates."""
    return "record|" + image_id


def missing_key(image_id: str) -> str:
    """The key of a remote original's remembered absence (upstream 404 or 403)."""
    return "missing|" + image_id


def failed_key(image_id: str) -> str:
    """The key of a remote original's remembered upstream failure (and whether it timed out)."""
    return "failed|" + image_id


# --- tags ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)  # asked on every image request; a hash each time otherwise
def original_tag(image_id: str) -> str:
    """``o-`` and 16 hex digits of a hash of the id: short, stable, and header-safe whatever the id holds."""
    return "o-" + hashlib.sha256(image_id.encode()).hexdigest()[:16]


def mount_tag(prefix: str) -> str:
    return "m-" + hashlib.sha256(prefix.encode()).hexdigest()[:16]


def tags_for(image_id: str, prefixes: Iterable[str]) -> tuple[str, ...]:
    """The original's tag, and its mount's when it is under a prefix (longest first in ``prefixes``)."""
    prefix = next((p for p in prefixes if p and image_id.startswith(p)), None)
    return (original_tag(image_id),) if prefix is None else (original_tag(image_id), mount_tag(prefix))


def tag_headers(tags: Iterable[str], names: Iterable[str]) -> dict[str, str]:
    """``tags`` in each header of ``names``, separated as that header's readers expect."""
    tags = tuple(tags)
    return {name: (" " if name.lower() == SURROGATE_KEY else ",").join(tags) for name in names}

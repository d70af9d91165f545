"""Purging one original everywhere: the cache tags that name it, and dropping what is kept under them.

Every image response carries the original's tag (``o-`` and 16 hex digits of a hash of its
id: short, stable, and header-safe whatever the id holds) and, for an original under a mount
prefix, the mount's tag (``m-`` ...), in the headers CDNs purge by (``PROXY_TAG_HEADERS``):
``Surrogate-Key`` (Fastly, Varnish xkey) space-separated, the others (Cloudflare's
``Cache-Tag``, Akamai's ``Edge-Cache-Tag``) comma-separated. One purge of the tag there
removes every size, format and preset of the original.

On the origin, ``purge`` drops every variant and the reduced copy stored under the tag (an
index on diskcache's tag column, so no scan), and for a remote original its local copies and
remembered version, so that the next request asks upstream again. Other workers' memory
tiers and memos notice within ``cache.EPOCH_CHECK`` seconds.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .metrics import PURGED, PURGES

if TYPE_CHECKING:
    from .cache import VariantCache
    from .sources import SourceStore

SURROGATE_KEY = "surrogate-key"  # the one header whose tags are separated by spaces


@functools.lru_cache(maxsize=65536)  # asked on every image request; a hash each time otherwise
def original_tag(image_id: str) -> str:
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


def purge(image_id: str, cache: VariantCache, stores: Iterable[SourceStore]) -> int:
    """Drop everything kept for ``image_id``; the number of entries removed (0 for an unknown id).

    ``stores`` forget what they remember of it (remote originals); ids not theirs they ignore.
    """
    tag = original_tag(image_id)
    removed = cache.purge(tag) + sum(store.forget(image_id) for store in stores)
    PURGES.inc()
    PURGED.inc(removed)
    return removed

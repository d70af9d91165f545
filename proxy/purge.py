"""Purging one original everywhere: the cache tags that name it, and dropping what is kept under them.

Every image response carries the original's tag (``o-`` and 16 hex digits of a hash of its
id: short, stable, and header-safe whatever the id holds) and, for an original under a mount
prefix, the mount's tag (``m-`` ...), in the headers CDNs purge by (``PROXY_TAG_HEADERS``):
``Surrogate-Key`` (Fastly, Varnish xkey) space-separated, the others (Cloudflare's
``Cache-Tag``, Akamai's ``Edge-Cache-Tag``) comma-separated. One purge of the tag there
removes every size, format and preset of the original. The tags are built in keys.py, with
every cache key.

On the origin, ``purge`` drops every variant and the reduced copy stored under the tag (an
index on diskcache's tag column, so no scan), the original's objects in the shared result tier
(one prefix), and for a remote original its local copies and remembered version, so that the
next request asks upstream again. Other workers' memory
tiers and memos notice within ``cache.EPOCH_CHECK`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .keys import SURROGATE_KEY, mount_tag, original_tag, tag_headers, tags_for
from .metrics import PURGED, PURGES

if TYPE_CHECKING:
    from .cache import VariantCache
    from .results import ResultTier
    from .sources import SourceStore

# The tag builders, where they were first named (tests, bench and the CLI import them from here).
__all__ = ["SURROGATE_KEY", "mount_tag", "original_tag", "purge", "tag_headers", "tags_for"]


def purge(
    image_id: str, cache: VariantCache, stores: Iterable[SourceStore], results: ResultTier | None = None
) -> int:
    """Drop everything kept for ``image_id``; the number of entries removed (0 for an unknown id).

    ``stores`` forget what they remember of it (remote originals); ids not theirs they ignore.
    ``results``, the shared result tier, deletes the original's objects, for every instance:
    first, so that no worker here reads one back between the two.
    """
    tag = original_tag(image_id)
    shared = (results.purge(tag) or 0) if results is not None else 0
    removed = shared + cache.purge(tag) + sum(store.forget(image_id) for store in stores)
    PURGES.inc()
    PURGED.inc(removed)
    return removed

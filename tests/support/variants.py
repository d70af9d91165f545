"""Rendered variants made of bytes, for the cache's tests: no pipeline needed to fill a cache."""

from __future__ import annotations

import random

from proxy.cache import VariantCache
from proxy.formats import FORMATS
from proxy.pipeline import Rendered

MiB = 1 << 20


def rendered(size: int, seed: int = 0) -> Rendered:
    """``size`` bytes that start as a WebP does (the cache reads a variant's type from them)."""
    return Rendered((b"RIFF\0\0\0\0WEBP" + random.Random(seed).randbytes(size))[:size], FORMATS["webp"])


def present(cache: VariantCache, key: str) -> bool:
    """Whether ``key`` is cached; closes the file a hit may hold open."""
    variant = cache.get(key)
    if variant is not None and not isinstance(variant.body, bytes):
        variant.body.close()
    return variant is not None

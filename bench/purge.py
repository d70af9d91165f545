"""What the purge index costs: cache writes and disk hits with diskcache's tag index and without,
and how long a purge of one original takes among many.

    .venv/bin/python bench/purge.py [--entries 4000] [--hits 20000]

Both caches are VariantCaches on their own directories, memory tier off (so every hit is an
SQLite lookup and a read); the baseline has the index dropped. Alternating rounds, medians.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.cache import VariantCache  # noqa: E402
from proxy.formats import FORMATS  # noqa: E402
from proxy.pipeline import Rendered  # noqa: E402
from proxy.purge import original_tag  # noqa: E402

SIZES = (200, 400, 800, 1200, 1600)  # variants per original: one key each


def variant(size: int, seed: int) -> Rendered:
    body = b"RIFF\0\0\0\0WEBP" + random.Random(seed).randbytes(size)
    return Rendered(body, FORMATS["webp"])


def fill(cache: VariantCache, entries: int) -> float:
    started = time.perf_counter()
    for n in range(entries):
        original = f"products/{n // len(SIZES)}.jpg"
        cache.put(f"7|{original}|v1|w={SIZES[n % len(SIZES)]}|webp", variant(2000, n), original_tag(original))
    return (time.perf_counter() - started) / entries


def hits(cache: VariantCache, entries: int, count: int) -> float:
    rng = random.Random(1)
    keys = []
    for _ in range(count):
        n = rng.randrange(entries)
        keys.append(f"7|products/{n // len(SIZES)}.jpg|v1|w={SIZES[n % len(SIZES)]}|webp")
    started = time.perf_counter()
    for key in keys:
        assert cache.get(key) is not None
    return (time.perf_counter() - started) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=4000)
    parser.add_argument("--hits", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-purge-"))
    indexed = VariantCache(scratch / "indexed", 1 << 30, memory=0)
    plain = VariantCache(scratch / "plain", 1 << 30, memory=0)
    assert plain._cache is not None
    plain._cache.drop_tag_index()
    writes = {"indexed": fill(indexed, args.entries), "plain": fill(plain, args.entries)}
    reads: dict[str, list[float]] = {"indexed": [], "plain": []}
    pair = [("indexed", indexed), ("plain", plain)]
    for _, cache in pair:  # warm: every page read once, so neither pays for the disk first
        hits(cache, args.entries, args.entries)
    for _ in range(args.rounds):
        for name, cache in pair:
            reads[name].append(hits(cache, args.entries, args.hits // args.rounds))
        pair.reverse()  # neither always goes first
    print(f"{args.entries} variants of {args.entries // len(SIZES)} originals; disk hits, memory tier off")
    for name in ("plain", "indexed"):
        hit = statistics.median(reads[name])
        print(f"  {name:<8} write {writes[name] * 1e6:7.1f} us   hit {hit * 1e6:6.1f} us")
    ratio = statistics.median(reads["indexed"]) / statistics.median(reads["plain"])
    print(f"  hit with the index / without: {ratio:.2f}x; write: {writes['indexed'] / writes['plain']:.2f}x")
    for name, cache in (("indexed", indexed), ("plain", plain)):
        started = time.perf_counter()
        removed = cache.purge(original_tag("products/7.jpg"))
        took = (time.perf_counter() - started) * 1000
        print(f"  purge of one original ({removed} variants), {name}: {took:.1f} ms")


if __name__ == "__main__":
    main()

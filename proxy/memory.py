"""glibc malloc settings for a worker, so that what a transform frees goes back to the system.

A transform allocates and frees buffers of megabytes (decoded frames, resized copies, encoder
output) from whichever of a worker's threads it runs on. Left as glibc sets itself up, a worker
kept nearly all of it, as free chunks inside malloc's arenas, and grew for as long as it ran
(figures: docs/performance.md, "Memory"). Two defaults together cause it:

- up to 8 arenas per core, one per thread that met contention, and each keeps the high-water
  mark of what its threads freed: heaps are given back only from their top;
- the dynamic mmap threshold: once a buffer allocated with mmap is freed, glibc raises the
  threshold to that buffer's size (up to 32 MiB) and the trim threshold to twice that, so every
  later frame under 32 MiB is carved from an arena heap and stays there after it is freed.

``tune_malloc`` fixes the mmap threshold (which turns the dynamic one off), so buffers of a
megabyte or more are mapped for each use and unmapped when freed, and caps the arenas. Neither
is enough alone (per worker after 150 s: 2 arenas ~350 MiB, a 1 MiB threshold ~230 MiB and
growing); with both, a worker levels off near 190 MiB (10 minutes; ~1.7 GiB untuned). The cost,
a mapped buffer's pages faulted in anew on each use (~3,000 faults a miss against ~750), was
within the noise of CPU time per miss (117-118 ms against 108-132 ms untuned, 2 runs each).
It is called in each worker after fork (gunicorn.conf.py's ``post_fork``): an environment
variable such as MALLOC_ARENA_MAX is read once when a process starts, too late for a worker
forked from a running master.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers, from glibc's malloc.h
M_ARENA_MAX = -8

# Fixed, the mmap threshold also keeps the trim threshold at glibc's 128 KiB (the dynamic one
# doubles it), so the free top of a heap over that is given back too.
MMAP_THRESHOLD = 1 << 20  # bytes: a buffer this large or larger is mapped for its own use
ARENA_MAX = 2  # arenas a worker's threads share


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD, arena_max: int = ARENA_MAX) -> bool:
    """Set the mmap threshold and the arena cap of this process's glibc malloc. False where
    malloc is not glibc's (musl, macOS: nothing is changed) or it refused a value."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it; musl's mallopt does nothing)
    except (OSError, AttributeError, TypeError):
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    accepted = [libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold), libc.mallopt(M_ARENA_MAX, arena_max)]
    return all(accepted)

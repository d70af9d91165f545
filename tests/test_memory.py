"""A worker gives back what its transforms free (gunicorn.conf.py's post_fork, proxy/memory.py)."""

from __future__ import annotations

import platform
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import pytest

from .support.images import photo
from .support.servers import REPO, start_gunicorn

pytestmark = pytest.mark.integration

WIDTH, HEIGHT = 3456, 2304  # 8 MP: a decoded frame of 23 MiB, under glibc's 32 MiB dynamic mmap ceiling
FRAME = WIDTH * HEIGHT * 3
RENDERS = 32
CLIENTS = 8


def rss(pid: int) -> int:
    """The process's resident bytes (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.parametrize("tuned", [True, False], ids=["tuned", "glibc-defaults"])
def test_a_worker_returns_what_its_transforms_free(tmp_path: Path, tuned: bool) -> None:
    """Renders of a large original at many widths, from as many threads as the worker has: once
    done, a tuned worker holds less than one frame more than after its first two renders. With
    glibc's defaults it holds several, which shows that this load still exercises the tuning."""
    if not tuned and platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's defaults are what the tuning changes")
    root = tmp_path / "images"
    root.mkdir()
    small = photo(WIDTH // 8, HEIGHT // 8)
    cv2.imwrite(str(root / "large.jpg"), cv2.resize(small, (WIDTH, HEIGHT)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    env = {
        "PROXY_IMAGE_ROOT": str(root),
        "PROXY_CACHE_DIR": str(tmp_path / "cache"),
        "GUNICORN_THREADS": str(CLIENTS),
        "GUNICORN_JSON_ACCESSLOG": "0",
        "GUNICORN_MALLOC_TUNING": "1" if tuned else "0",
    }
    server = start_gunicorn(env, workers=1)
    try:
        (pid,) = server.workers()

        def render(width: int) -> None:  # over half the original's width: the whole frame is decoded
            status, _, body = server.request("GET", f"/image/large.jpg?w={width}&fmt=jpeg&q=70")
            assert status == 200 and body

        for width in (2100, 2101):  # first imports and allocations
            render(width)
        settled = rss(pid)
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(render, range(2200, 2200 + 25 * RENDERS, 25)))
        kept = rss(pid) - settled
    finally:
        server.stop()
    report = f"kept {kept / 2**20:.0f} MiB after {RENDERS} renders of a {FRAME / 2**20:.0f} MiB frame"
    if tuned:
        assert kept < FRAME, report
    else:
        assert kept > 2 * FRAME, report


def test_tune_malloc_says_whether_glibc_took_it() -> None:
    """True on glibc (where the test above measures the tuning), False elsewhere; in a process
    of its own, since the settings hold for the rest of a process's life."""
    code = "from proxy.memory import tune_malloc; print(tune_malloc())"
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stdout.strip() == str(platform.libc_ver()[0] == "glibc")

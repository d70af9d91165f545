"""The cache and HTTP caching through a real gunicorn with several workers sharing one cache."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import pytest

from .support.images import decode, encode, photo
from .support.servers import REPO, Server, eventually, start_gunicorn

pytestmark = pytest.mark.integration

Env = dict[str, str]


def make_root(base: Path) -> Env:
    """An image root and a cache dir that an unprivileged worker can use too."""
    base.chmod(0o755)
    images, cache = base / "images", base / "cache"
    images.mkdir(mode=0o755)
    cache.mkdir(mode=0o755)
    (images / "photo.jpg").write_bytes(_originals()["photo.jpg"])
    (images / "big.png").write_bytes(_originals()["big.png"])
    for path in images.iterdir():
        path.chmod(0o644)
    return {"PROXY_IMAGE_ROOT": str(images), "PROXY_CACHE_DIR": str(cache), "PROXY_CACHE_SIZE": "64MiB"}


@functools.cache
def _originals() -> dict[str, bytes]:
    return {
        "photo.jpg": encode(photo(1200, 800), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 92),
        "big.png": encode(photo(3000, 2000, seed=5), ".png", cv2.IMWRITE_PNG_COMPRESSION, 1),
    }


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="origin-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def serve(base: Path) -> Iterator[Callable[..., tuple[Server, Env]]]:
    servers: list[Server] = []

    def start(workers: int = 2, extra: Env | None = None, **kwargs: object) -> tuple[Server, Env]:
        env = {**make_root(base), **(extra or {})}
        server = start_gunicorn(env, workers=workers, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server, env

    yield start
    for server in servers:
        server.stop()


def cache_stats(env: Env) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "cache", "stats"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def get(server: Server, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return server.request("GET", path, {k.replace("_", "-"): v for k, v in headers.items()})


def test_concurrent_identical_misses_render_once(serve: Callable[..., tuple[Server, Env]]) -> None:
    server, env = serve(workers=4)
    url = "/image/big.png?w=1500&fmt=png"
    barrier = threading.Barrier(12)

    def fetch(_: int) -> tuple[int, dict[str, str], bytes]:
        barrier.wait()
        return get(server, url)

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(fetch, range(12)))
    assert [status for status, _, _ in results] == [200] * 12
    assert [headers["x-cache"] for _, headers, _ in results].count("MISS") == 1
    assert len({body for _, _, body in results}) == 1
    assert decode(results[0][2]).shape == (1000, 1500, 3)
    stats = cache_stats(env)
    assert stats["renders"] == 1 and stats["entries"] == 1


CONDITIONALS = [
    # (If-None-Match, If-Modified-Since, expected status); "ETAG"/"LM" stand for the current values
    ("ETAG", None, 304),
    ('"other", ETAG', None, 304),
    ("*", None, 304),
    ("W/ETAG", None, 304),
    ('"other"', None, 200),
    ('W/"other"', None, 200),
    (None, "LM", 304),
    (None, "Sat, 01 Jan 2000 00:00:00 GMT", 200),
    (None, "Fri, 01 Jan 2100 00:00:00 GMT", 304),
    (None, "not a date", 200),
    ('"other"', "LM", 200),  # If-None-Match wins over If-Modified-Since
    ("ETAG", "Sat, 01 Jan 2000 00:00:00 GMT", 304),
]


def test_conditional_get_matrix(serve: Callable[..., tuple[Server, Env]]) -> None:
    server, _ = serve()
    for url, vary in [("/image/photo.jpg?w=300&fmt=auto", True), ("/image/photo.jpg?w=301", False)]:
        _, first, body = get(server, url, Accept="image/webp")
        _, hit, _ = get(server, url, Accept="image/webp")
        assert hit["x-cache"] == "HIT" and hit["etag"] == first["etag"]
        for inm, ims, expected in CONDITIONALS:
            headers = {"Accept": "image/webp"}
            if inm is not None:
                headers["If-None-Match"] = inm.replace("ETAG", first["etag"])
            if ims is not None:
                headers["If-Modified-Since"] = ims.replace("LM", first["last-modified"])
            status, response, content = server.request("GET", url, headers)
            assert status == expected, (inm, ims)
            if status == 304:
                assert content == b""
                assert response["etag"] == first["etag"]
                assert response["cache-control"] == first["cache-control"]
                assert response["last-modified"] == first["last-modified"]
                assert response.get("vary") == ("Accept" if vary else None)
            else:
                assert content == body


def test_head_matches_get_on_miss_and_hit(serve: Callable[..., tuple[Server, Env]]) -> None:
    server, _ = serve()
    status, head, body = server.request("HEAD", "/image/big.png?w=900&fmt=png")  # a miss
    assert status == 200 and body == b"" and head["x-cache"] == "MISS"
    _, got, content = get(server, "/image/big.png?w=900&fmt=png")  # now a hit, streamed from its file
    assert got["x-cache"] == "HIT"
    assert int(got["content-length"]) == len(content) > 32 * 1024
    status, head_hit, body = server.request("HEAD", "/image/big.png?w=900&fmt=png")
    assert body == b""
    for name in ("content-length", "content-type", "etag", "last-modified", "cache-control"):
        assert head[name] == got[name] == head_hit[name], name
    assert decode(content).shape == (600, 900, 3)


def test_replacing_an_original_serves_the_new_image(serve: Callable[..., tuple[Server, Env]]) -> None:
    server, env = serve()
    _, before, _ = get(server, "/image/photo.jpg?w=100")
    images = Path(env["PROXY_IMAGE_ROOT"])
    replacement = images / "photo.jpg.new"
    replacement.write_bytes(encode(photo(500, 500, seed=9), ".jpg"))
    os.replace(replacement, images / "photo.jpg")
    status, after, body = get(server, "/image/photo.jpg?w=100", If_None_Match=before["etag"])
    assert status == 200 and after["etag"] != before["etag"] and after["x-cache"] == "MISS"
    assert decode(body).shape[:2] == (100, 100)


def test_a_worker_killed_mid_request_leaves_nothing_broken(serve: Callable[..., tuple[Server, Env]]) -> None:
    server, env = serve()
    url = "/image/big.png?fmt=webp&w=2900"
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(_try(lambda: get(server, url))))
    thread.start()
    time.sleep(0.15)  # the render is under way (it takes about 0.4 s)
    for pid in server.workers():
        os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert outcome and isinstance(outcome[0], Exception | tuple)
    started = time.monotonic()
    status, headers, body = _retry(lambda: get(server, url))
    assert status == 200
    assert time.monotonic() - started < 10  # the dead worker's lock did not hold us for its expiry
    assert int(headers["content-length"]) == len(body)
    assert decode(body).shape == (1933, 2900, 3)
    status, headers, again = get(server, url)
    assert headers["x-cache"] == "HIT" and again == body
    assert cache_stats(env)["entries"] == 1


def test_hits_are_not_held_up_behind_transforms(serve: Callable[..., tuple[Server, Env]]) -> None:
    """One worker: one miss transforms, one waits, one finds the queue full, and a hit still passes."""
    limits = {"PROXY_MAX_TRANSFORMS": "1", "PROXY_TRANSFORM_QUEUE": "1", "PROXY_TRANSFORM_WAIT": "5"}
    server, _ = serve(workers=1, extra=limits)
    assert get(server, "/image/photo.jpg?w=50")[0] == 200  # cached from now on
    misses = [f"/image/big.png?fmt=webp&w={width}" for width in (2900, 2800, 2700)]
    with ThreadPoolExecutor(3) as pool:
        running = []
        for url in misses:
            running.append(pool.submit(get, server, url))
            time.sleep(0.05)  # in this order: transforming, waiting, refused
        started = time.monotonic()
        status, headers, _ = get(server, "/image/photo.jpg?w=50")
        hit_seconds = time.monotonic() - started
        results = [future.result() for future in running]
    assert status == 200 and headers["x-cache"] == "HIT"
    assert hit_seconds < 0.2
    assert [result[0] for result in results] == [200, 200, 503]
    refused = results[2][1]
    assert int(refused["retry-after"]) > 0 and refused["cache-control"] == "no-store"


def test_cache_directory_deleted_while_serving(serve: Callable[..., tuple[Server, Env]]) -> None:
    server, env = serve()
    for width in (100, 200, 300):
        get(server, f"/image/photo.jpg?w={width}")
    shutil.rmtree(env["PROXY_CACHE_DIR"])
    for width in (100, 200, 300, 400):
        status, _, body = get(server, f"/image/photo.jpg?w={width}")
        assert status == 200 and decode(body).shape[1] == width
    # Workers notice within seconds that their index is gone and open a new one.
    index = Path(env["PROXY_CACHE_DIR"]) / "cache.db"

    def recovered() -> bool:
        hit = get(server, "/image/photo.jpg?w=500")[1]["x-cache"] == "HIT"  # requests drive the check
        return hit and index.exists()

    assert eventually(recovered, within=12, every=0.5)


@pytest.mark.slow
def test_index_overwritten_with_garbage_while_serving(serve: Callable[..., tuple[Server, Env]]) -> None:
    server, env = serve()
    workers = server.workers()
    for width in range(100, 400, 20):
        get(server, f"/image/photo.jpg?w={width}")
    index = Path(env["PROXY_CACHE_DIR"]) / "cache.db"
    index.write_bytes(os.urandom(index.stat().st_size))
    for width in range(100, 600, 20):
        status, _, body = get(server, f"/image/photo.jpg?w={width}")
        assert status == 200 and decode(body).shape[1] == width
    assert eventually(
        lambda: get(server, "/image/photo.jpg?w=77")[1]["x-cache"] == "HIT", within=12, every=0.5
    )
    assert server.workers() == workers


@pytest.mark.slow
def test_cache_directory_made_read_only(serve: Callable[..., tuple[Server, Env]], base: Path) -> None:
    # Root ignores file modes unless it gives up CAP_DAC_OVERRIDE, as gunicorn does here.
    wrapper = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    if wrapper and not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to run gunicorn as root without CAP_DAC_OVERRIDE")
    server, env = serve(workers=1, wrapper=wrapper)  # one worker: every request sees the same failure
    cache = Path(env["PROXY_CACHE_DIR"])
    get(server, "/image/big.png?w=1000&fmt=png")
    _chmod_tree(cache, write=False)
    try:
        for width in (1001, 1002, 1003, 1001, 1000):
            status, _, body = get(server, f"/image/big.png?w={width}&fmt=png")
            assert status == 200 and decode(body).shape[1] == width
        assert "unavailable" in server.log_text()
    finally:
        _chmod_tree(cache, write=True)
    assert server.log_text().count("unavailable") == 1  # logged once, not per request
    assert eventually(
        lambda: get(server, "/image/big.png?w=1004&fmt=png")[1]["x-cache"] == "HIT", within=12, every=0.5
    )
    assert "available again" in server.log_text()


@pytest.mark.slow
def test_cache_disk_full(serve: Callable[..., tuple[Server, Env]], base: Path) -> None:
    _require_mount_namespaces(base)
    cache = base / "cache"
    # The cache directory is a 3 MB file system in a mount namespace private to gunicorn.
    server, _ = serve(wrapper=_in_private_namespace(f"mount -t tmpfs -o size=3m,mode=755 tmpfs {cache}"))
    for width in range(600, 1400, 25):  # 0.3 to 1.5 MB each: the disk fills after a few
        status, _, body = get(server, f"/image/big.png?w={width}&fmt=png")
        assert status == 200 and decode(body).shape[1] == width
    assert "No space left on device" in server.log_text()


def _in_private_namespace(setup: str) -> list[str]:
    """A command prefix: run ``setup`` in a new mount namespace, then exec the command."""
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", f'{setup} && exec "$@"', "sh"]


def _require_mount_namespaces(base: Path) -> None:
    probe = subprocess.run(
        _in_private_namespace(f"mount -t tmpfs tmpfs {base}") + ["true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"this machine cannot make mount namespaces: {probe.stderr.decode().strip()}")


def _chmod_tree(root: Path, write: bool) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if write else mode & ~0o222)


def _try(call: Callable[[], object]) -> object:
    try:
        return call()
    except Exception as error:  # the connection died with its worker
        return error


def _retry(call: Callable[[], tuple[int, dict[str, str], bytes]]) -> tuple[int, dict[str, str], bytes]:
    deadline = time.monotonic() + 10
    while True:
        try:
            return call()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_sigterm_lets_in_flight_requests_finish(serve: Callable[..., tuple[Server, Env]]) -> None:
    server, env = serve(workers=1)
    url = "/image/big.png?fmt=webp&w=2900"  # about 0.4 s of work
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(_try(lambda: get(server, url))))
    thread.start()
    time.sleep(0.15)
    server.process.send_signal(signal.SIGTERM)
    thread.join(30)
    assert server.process.wait(timeout=30) == 0
    status, headers, body = outcome[0]  # type: ignore[misc]
    assert status == 200 and int(headers["content-length"]) == len(body)
    assert decode(body).shape == (1933, 2900, 3)
    stats = cache_stats(env)
    assert stats["entries"] == 1 and stats["renders"] == 1  # stored whole before the worker left

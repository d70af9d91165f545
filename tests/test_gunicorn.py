"""End to end through a real gunicorn with several workers, as `make serve` runs it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .support.images import decode
from .support.servers import REPO, Server, gunicorn_command, start_gunicorn

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import shutil

    root = tmp_path_factory.mktemp("images")
    for name in ("rocket.jpg", "coffee-cutout.png", "chelsea.png"):
        shutil.copy(REPO / "samples" / name, root / name)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    env = {"PROXY_IMAGE_ROOT": str(root), "PROXY_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    server = start_gunicorn(env, workers=2)
    yield server
    server.stop()


def test_thumbnail(server: Server) -> None:
    status, headers, body = server.request("GET", "/image/rocket.jpg?w=400&fmt=webp")
    assert status == 200
    assert headers["content-type"] == "image/webp"
    assert int(headers["content-length"]) == len(body)
    assert decode(body).shape == (267, 400, 3)
    assert headers["etag"].startswith('"') and "last-modified" in headers and "date" in headers


def test_head(server: Server) -> None:
    _, get_headers, get_body = server.request("GET", "/image/chelsea.png?w=120")
    status, headers, body = server.request("HEAD", "/image/chelsea.png?w=120")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(get_body))
    assert headers["etag"] == get_headers["etag"]


def test_conditional_get(server: Server) -> None:
    _, headers, _ = server.request("GET", "/image/rocket.jpg?w=64")
    status, again, body = server.request("GET", "/image/rocket.jpg?w=64", {"If-None-Match": headers["etag"]})
    assert status == 304 and body == b""
    assert again["etag"] == headers["etag"] and again["last-modified"] == headers["last-modified"]


def test_workers_agree_on_etags(server: Server) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: server.request("GET", "/image/chelsea.png?w=77&fmt=jpeg"), range(16))
        )
    assert {status for status, _, _ in results} == {200}
    assert len({headers["etag"] for _, headers, _ in results}) == 1


def test_bad_input_never_kills_a_worker(server: Server) -> None:
    workers = server.workers()
    for path, expected in [
        ("/image/broken.png?w=10", 415),
        ("/image/rocket.jpg?w=-1", 400),
        ("/image/rocket.jpg?fmt=bmp", 400),
        ("/image/../../etc/passwd", 404),
        ("/image/%2e%2e/%2e%2e/etc/passwd", 404),
        ("/image/rocket.jpg%00", 404),
    ]:
        status, headers, body = server.request("GET", path)
        assert status == expected, path
        assert headers["content-type"] == "application/json"
        assert headers["cache-control"] == "no-store"
    status, _, _ = server.request("POST", "/image/rocket.jpg")
    assert status == 405
    assert server.request("GET", "/image/rocket.jpg?w=20")[0] == 200
    assert server.workers() == workers


def test_structured_logs_with_request_ids(server: Server) -> None:
    server.request("GET", "/image/rocket.jpg?w=33&fmt=png", {"X-Request-Id": "log-test-1"})
    status, headers, _ = server.request("GET", "/image/rocket.jpg?w=oops", {"X-Request-Id": "log-test-2"})
    assert status == 400 and headers["x-request-id"] == "log-test-2"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = {
            line["id"]: line for line in server.access_lines() if str(line.get("id", "")).startswith("log-")
        }
        if len(lines) == 2:
            break
        time.sleep(0.05)
    assert lines["log-test-1"]["status"] == 200 and lines["log-test-1"]["cache"] == "MISS"
    assert str(lines["log-test-1"]["transform"]).startswith("w=33&")
    assert lines["log-test-2"]["status"] == 400 and lines["log-test-2"]["logger"] == "proxy.access"
    errors = [json.loads(line) for line in server.log_text().splitlines() if line.strip()]
    assert any("Booting worker" in str(entry["message"]) for entry in errors)  # gunicorn's own, as JSON


def test_no_access_line_is_lost_when_workers_are_recycled_or_stopped(tmp_path: Path) -> None:
    """Lines wait in memory for up to 100 ms; a worker recycled by max_requests, and a graceful
    stop, write out what they hold."""
    server = start_gunicorn(
        {"PROXY_IMAGE_ROOT": str(REPO / "samples"), "PROXY_CACHE_DIR": str(tmp_path / "cache")},
        workers=2,
        args=("--max-requests", "7", "--max-requests-jitter", "0"),
    )
    try:
        sent = [f"keep-{n}" for n in range(40)]
        for ident in sent:
            assert server.request("GET", "/image/rocket.jpg?w=21", {"X-Request-Id": ident})[0] == 200
        server.process.terminate()
        server.process.wait(timeout=30)
        logged = [line["id"] for line in server.access_lines() if str(line.get("id", "")).startswith("keep-")]
        assert sorted(logged) == sorted(sent)  # every one, once
    finally:
        server.stop()


def test_instances_on_one_host_do_not_share_a_control_socket(tmp_path: Path) -> None:
    """gunicorn's default control socket is one path per user: three instances would each take it
    from the one before. Off by default; a path per instance when asked for."""
    env = {"PROXY_IMAGE_ROOT": str(REPO / "samples")}
    servers = []
    try:
        for n in range(3):
            servers.append(start_gunicorn({**env, "PROXY_CACHE_DIR": str(tmp_path / f"c{n}")}, workers=1))
        for server in servers:
            assert server.request("GET", "/image/rocket.jpg?w=30")[0] == 200
            assert "Control socket" not in server.log_text()
        own = tmp_path / "own.ctl"
        servers.append(
            start_gunicorn(
                {**env, "PROXY_CACHE_DIR": str(tmp_path / "c3"), "GUNICORN_CONTROL_SOCKET": str(own)},
                workers=1,
            )
        )
        deadline = time.monotonic() + 5
        while not own.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert own.is_socket() and str(own) in servers[-1].log_text()
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PROXY_CACHE_SIZE", "huge"),
        ("PROXY_MAX_SOURCE_PIXELS", "abc"),  # read when the package is imported, before logging
        ("PROXY_MAX_SOURCE_PIXELS", "1e9"),
        ("PROXY_MAX_SOURCE_PIXELS", "-5"),
        ("PROXY_SECRET", ""),
        ("GUNICORN_WORKERS", "abc"),
        ("GUNICORN_THREADS", "0"),
    ],
)
def test_bad_settings_end_the_boot_with_one_line_naming_the_variable(name: str, value: str) -> None:
    result = subprocess.run(
        gunicorn_command("127.0.0.1:0"),
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", name: value},
        capture_output=True,
        timeout=60,
    )
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {name}"), lines[0]
    assert repr(value) in lines[0] or name == "PROXY_SECRET", lines[0]  # a secret is never echoed


def test_a_misspelt_variable_is_warned_about_at_boot(tmp_path: Path) -> None:
    env = {
        "PROXY_IMAGE_ROOT": str(REPO / "samples"),
        "PROXY_CACHE_DIR": str(tmp_path),
        "PROXY_CACHE_SZE": "1GB",
    }
    server = start_gunicorn(env, workers=1)
    try:
        assert server.request("GET", "/image/rocket.jpg?w=30")[0] == 200  # a warning, not a refusal
        assert (
            "PROXY_CACHE_SZE is not a setting and is ignored; did you mean PROXY_CACHE_SIZE?"
            in server.log_text()
        )
    finally:
        server.stop()

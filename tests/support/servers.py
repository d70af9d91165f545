"""A real gunicorn, started as a deployment would start it, on a free loopback port."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]


def http_request(
    port: int, method: str, path: str, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh loopback connection: status, lower-cased headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, headers=dict(headers or {}))
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def eventually(
    attempt: Callable[[], T], done: Callable[[T], bool] = bool, within: float = 5.0, every: float = 0.05
) -> T:
    """``attempt()`` every ``every`` seconds until ``done`` says yes (its answer) or ``within``
    seconds pass (its last answer, for the caller's assertion to show): for what happens off the
    request path. Without ``done``, until ``attempt()`` is true."""
    deadline = time.monotonic() + within
    answer = attempt()
    while not done(answer) and time.monotonic() < deadline:
        time.sleep(every)
        answer = attempt()
    return answer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path  # gunicorn's stderr: errors, JSON lines
    out: Path  # gunicorn's stdout: the access log, JSON lines

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def access_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        return http_request(self.port, method, path, headers)

    def workers(self) -> set[int]:
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {int(child) for child in children}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.unlink(missing_ok=True)
        self.out.unlink(missing_ok=True)


def gunicorn_command(bind: str, *extra: str, app: str = "proxy.app:create_app()") -> list[str]:
    """How a deployment starts the origin (docs/deployment.md), from the repository root."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "--bind",
        bind,
        *extra,
        app,
    ]


def start_gunicorn(
    env: Mapping[str, str],
    workers: int | None = 2,
    ready_timeout: float = 30,
    wrapper: Sequence[str] = (),
    args: Sequence[str] = (),
) -> Server:
    """gunicorn with ``env`` (and command-line ``args``) on a free port, run under the command
    prefix ``wrapper`` if given.

    ``workers=None`` keeps gunicorn.conf.py's own count (two per core).
    """
    port = free_port()
    extra = (*(("--workers", str(workers)) if workers is not None else ()), *args)
    workers = workers or 2 * (os.cpu_count() or 1)
    log = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    out = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".out")[1])
    with log.open("wb") as stderr, out.open("wb") as stdout:
        process = subprocess.Popen(
            [*wrapper, *gunicorn_command(f"127.0.0.1:{port}", *extra)],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=stdout,
            stderr=stderr,
        )
    return wait_until_serving(Server(process, port, log, out), workers, ready_timeout)


def wait_until_serving(server: Server, workers: int, timeout: float = 30) -> Server:
    """``server`` once it accepts connections on its port and has all ``workers`` booted; an
    error with its log if it exits first, stopped if it is not ready within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {server.log_text()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                pass
            if len(server.workers()) == workers:
                return server
        except OSError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError("gunicorn did not start in time")

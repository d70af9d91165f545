"""The three ways a client reaches the origin, for tests that must hold on each: straight to a
real gunicorn, through deploy/nginx.conf, through deploy/varnish.vcl, each front as shipped
(deploy/*_local.py point only its EDIT lines at loopback ports and a scratch prefix)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy import nginx_local, varnish_local

from .servers import REPO, Server, free_port, http_request, start_gunicorn

PATHS = ("origin", "nginx", "varnish")
SAMPLES = ("rocket.jpg", "chelsea.png", "coffee.png")
TOKEN = "front-purge-token-0123456789"


def available(path: str) -> bool:
    """Whether this machine can run ``path``'s front (.ci/run installs both)."""
    if path == "nginx":
        return shutil.which("nginx") is not None
    if path == "varnish":
        return shutil.which("varnishd") is not None or Path("/usr/sbin/varnishd").exists()
    return True


@dataclass
class Way:
    """One way to the origin: ``port`` is what clients talk to (the front's, or gunicorn's)."""

    name: str
    origin: Server
    port: int
    images: Path
    access_log: Path  # the origin's: one line per request that reached gunicorn
    front: subprocess.Popen[bytes] | None = None
    prefix: Path | None = None  # the front's scratch directory
    extra: dict[str, object] = field(default_factory=dict)

    def request(
        self, path: str, method: str = "GET", port: int | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        """``headers`` as keyword arguments, underscores for dashes (If_None_Match=...)."""
        return http_request(
            port or self.port, method, path, {k.replace("_", "-"): v for k, v in headers.items()}
        )

    def origin_requests(self, path: str, expected: int, method: str = "GET") -> int:
        """Requests for ``path`` that reached gunicorn, once ``expected`` are logged (or 2 s
        passed): gunicorn logs a request just after answering it, and a moment more lets an
        unexpected extra line arrive too."""
        needle = f"{method} {path} "
        deadline = time.monotonic() + 2
        while self.access_log.read_text().count(needle) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        return self.access_log.read_text().count(needle)

    def stop(self) -> None:
        if self.front is not None:
            self.front.send_signal(signal.SIGQUIT if self.name == "nginx" else signal.SIGTERM)
            try:
                self.front.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.front.kill()
                self.front.wait()
        self.origin.stop()
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)


def start(
    path: str,
    base: Path,
    env: Mapping[str, str] | None = None,
    workers: int | None = 2,
    validity: int | None = None,
    jxl: bool = False,
) -> Way:
    """gunicorn on copies of the samples under ``base``, reached by ``path``; ``validity`` and
    ``jxl`` adapt nginx's file as deploy/nginx_local.py can."""
    if not available(path):
        pytest.skip(f"{path} is not installed (.ci/run installs it)")
    images = base / "images"
    images.mkdir(exist_ok=True)
    for name in SAMPLES:
        shutil.copy(REPO / "samples" / name, images / name)
    access_log = base / f"origin-access-{path}.log"
    origin = start_gunicorn(
        {
            "PROXY_IMAGE_ROOT": str(images),
            "PROXY_CACHE_DIR": str(base / f"origin-cache-{path}"),
            "PROXY_PURGE_TOKEN": TOKEN,
            "GUNICORN_ACCESSLOG": str(access_log),
            **(env or {}),
        },
        workers=workers,
    )
    way = Way(path, origin, origin.port, images, access_log)
    if path == "origin":
        return way
    way.prefix = nginx_local.scratch(path)
    way.port = free_port()
    address = f"127.0.0.1:{origin.port}"
    if path == "nginx":
        command = nginx_local.write_config(way.prefix, way.port, address, validity=validity, jxl=jxl)
    else:
        command = varnish_local.write_config(way.prefix, way.port, address)
    way.front = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if way.request("/healthz")[0] == 200:
                return way
        except OSError:
            pass
        time.sleep(0.05)
    log = way.prefix / "error.log"
    text = log.read_text() if log.exists() else ""
    way.stop()
    raise RuntimeError(f"{path} did not start: {text}")

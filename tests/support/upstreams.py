"""Real upstream servers on loopback for the remote-source tests: plain HTTP and moto's S3."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebOriginals(ThreadingHTTPServer):
    """Serves ``files`` under /img/ with ETags and 304s, counts GETs per path, and misbehaves
    on request: /redirect/<n>/<path> (n hops), /away/<host:port>/<path> (a redirect to another
    host), /slow/<path>, /lying/<path> (a short body), /endless/<path>, /fail/<path> (500),
    /hang/<path> (no status line, ever), /trickle/<path> (``trickle`` bytes a second),
    /half/<path> (declares and sends the first half: a truncated file, honestly framed),
    /dated/<path> (Last-Modified and If-Modified-Since, no ETag)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.gets: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()  # 304s answered, per path
        self.delay = 2.0
        self.trickle = 1024
        self.broken = False  # answer everything with 503
        self.hanging = False  # answer nothing at all
        self.released = threading.Event()  # set to let hanging requests go (they then close)
        self.hosts: list[str] = []  # the Host header of every request
        self.modified = "Wed, 01 Jan 2025 00:00:00 GMT"  # /dated/'s Last-Modified

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(BaseHTTPRequestHandler):
    server: WebOriginals

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.server.gets[self.path] += 1
        self.server.hosts.append(self.headers.get("Host", ""))
        if self.server.broken:
            return self._answer(503, b"down for maintenance")
        kind, _, rest = self.path.lstrip("/").partition("/")
        if self.server.hanging or kind == "hang":
            self.server.released.wait(60)
            self.close_connection = True
            return None
        if kind == "redirect":
            hops, _, path = rest.partition("/")
            target = f"/img/{path}" if hops == "0" else f"/redirect/{int(hops) - 1}/{path}"
            return self._answer(302, b"", {"Location": target})
        if kind == "away":
            host, _, path = rest.partition("/")
            return self._answer(302, b"", {"Location": f"http://{host}/img/{path}"})
        if kind == "fail":
            return self._answer(500, b"upstream broke")
        if kind == "slow":
            time.sleep(self.server.delay)
        data = self.server.files.get(rest)
        if data is None:
            return self._answer(404, b"not here")
        if kind == "dated":
            if self.headers.get("If-Modified-Since") == self.server.modified:
                self.server.not_modified[self.path] += 1
                return self._answer(304, b"", {"Last-Modified": self.server.modified})
            return self._answer(200, data, {"Last-Modified": self.server.modified})
        if kind == "half":
            return self._answer(200, data[: len(data) // 2], {"Content-Type": "image/jpeg"})
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.server.not_modified[self.path] += 1
            return self._answer(304, b"", {"ETag": etag})
        if kind == "lying":  # declares more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(data) + 1000))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return None
        if kind == "trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                for start in range(0, len(data), 64):
                    self.wfile.write(data[start : start + 64])
                    self.wfile.flush()
                    time.sleep(64 / self.server.trickle)
            except OSError:
                pass
            return None
        if kind == "endless":
            self.send_response(200)
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\0" * 65536)
            except OSError:
                return None
        return self._answer(200, data, {"ETag": etag, "Content-Type": "image/jpeg"})

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def web_originals() -> Iterator[WebOriginals]:
    server = WebOriginals()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()


class _RequestLog(logging.Handler):
    """Counts the requests moto's server logs ("GET /bucket/key HTTP/1.1" 200 -)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class S3Server:
    """moto's S3 API as a real HTTP server on loopback, and what it was asked."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer  # a second's import, for the tests that use S3

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._log = _RequestLog()

    def start(self) -> None:
        logging.getLogger("werkzeug").addHandler(self._log)
        logging.getLogger("werkzeug").setLevel(logging.INFO)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server._server is not None:  # not stopped already
            self._server.stop()
            self._server._server = None
        logging.getLogger("werkzeug").removeHandler(self._log)

    def client(self) -> Any:
        """A boto3 client of this server, with test credentials: to make buckets and put objects."""
        import boto3

        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
        )
        return session.client("s3", endpoint_url=self.endpoint)

    def gets(self, bucket: str, key: str) -> int:
        return sum(f'"GET /{bucket}/{key} ' in line for line in self._log.lines)

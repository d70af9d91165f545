"""Request ids, structured logs (one JSON line per request, JSON for errors too), and the
requests counter.

A request keeps the ``X-Request-Id`` it arrives with (nginx sets one), or gets a new one;
the id is echoed in the response and appears in every log line about the request, so an
error a client reports can be found. ``JsonFormatter`` is what gunicorn.conf.py installs
for the access and error logs.

``AccessLog`` is WSGI middleware rather than Flask hooks: it sees the request once, at the
edge, and reads what it records from the WSGI environ and the response's status and headers,
which costs a cache hit a fraction of what request-context lookups in three hooks did.

The access line bypasses ``logging`` (a record, a handler lock, a formatter and a write per
request cost a hit 9-27% of its throughput): it is built from a fixed layout, with only the
request's own strings JSON-escaped, and appended to an ``AccessWriter``, which a thread writes
out every ``FLUSH_EVERY`` seconds or once ``FLUSH_BYTES`` wait, in whole lines and in writes
of at most ``PIPE_BUF`` bytes (so that the workers' lines never interleave in a shared pipe),
and once more when the process exits (a graceful stop, a worker recycled by ``max_requests``).
Whether lines are written at all is still the ``proxy.access`` logger's level
(``GUNICORN_JSON_ACCESSLOG=0`` turns them off).
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import re
import select
import threading
import time
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _quoted
from typing import TYPE_CHECKING, Any

from flask import request

from .metrics import REQUESTS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

access_log = logging.getLogger("proxy.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # anything else is replaced, never logged raw
REQUEST_ID = "proxy.request_id"  # environ keys: set here...
TRANSFORM = "proxy.transform"  # ...and by the view, for the log line
_BY_STATUS: dict[int, Any] = {}  # the requests counter's child per status, looked up once
FLUSH_EVERY = 0.1  # seconds a line may wait in memory
FLUSH_BYTES = 64 * 1024  # or this much, whichever comes first


def request_id() -> str:
    """The current request's id (set before the app runs)."""
    return str(request.environ.get(REQUEST_ID, "-"))


class AccessWriter:
    """Lines kept in memory and written to ``fd`` by a thread of their own, in batches."""

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self._lines: collections.deque[str] = collections.deque()  # appends and pops are thread-safe
        self._waiting = 0  # about how many bytes wait (unlocked: only a hint for an early flush)
        self._wake = threading.Event()
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forked)
        atexit.register(self.flush)

    def write(self, line: str) -> None:
        if self._thread is None:
            self._start()
        self._lines.append(line)
        self._waiting += len(line)
        if self._waiting > FLUSH_BYTES:
            self._wake.set()

    def flush(self) -> None:
        """Write every waiting line now, in writes of whole lines no longer than PIPE_BUF."""
        with self._writing:
            self._waiting = 0
            batch: list[bytes] = []
            size = 0
            while self._lines:
                line = self._lines.popleft().encode()
                if batch and size + len(line) > select.PIPE_BUF:
                    self._send(b"".join(batch))
                    batch, size = [], 0
                batch.append(line)
                size += len(line)
            if batch:
                self._send(b"".join(batch))

    def _send(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            pass  # the log's reader is gone; requests must not fail for it

    def _start(self) -> None:
        with self._writing:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            self.flush()

    def _forked(self) -> None:
        """In a new worker: no thread yet (threads do not survive fork), and a fresh lock."""
        self._thread = None
        self._writing = threading.Lock()


STDOUT = AccessWriter(1)


class AccessLog:
    """WSGI middleware: give the request its id, echo it, count the answer and log one line."""

    def __init__(self, app: WSGIApplication, sink: AccessWriter = STDOUT) -> None:
        self.app = app
        self.sink = sink

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        ident = environ[REQUEST_ID] = given if _REQUEST_ID.fullmatch(given) else os.urandom(16).hex()
        answers: list[tuple[str, list[tuple[str, str]]]] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append(("X-Request-Id", ident))
            answers.append((status, headers))
            return start_response(status, headers, exc_info)

        body = self.app(environ, start)
        if answers:  # else the app raised, and the server reports that
            status, headers = answers[-1]
            self._record(environ, int(status[:3]), headers, time.perf_counter() - started)
        return body

    def _record(
        self, environ: WSGIEnvironment, status: int, headers: list[tuple[str, str]], took: float
    ) -> None:
        counter = _BY_STATUS.get(status) or _BY_STATUS.setdefault(status, REQUESTS.labels(str(status)))
        counter.inc()
        if not access_log.isEnabledFor(logging.INFO):
            return
        length = cache = None
        for name, value in headers:
            if name == "Content-Length":
                length = value if value.isdigit() else None
            elif name == "X-Cache":
                cache = value
        transform = environ.get(TRANSFORM)
        # The layout JsonFormatter gives a record with these fields, built directly: the id is
        # checked to need no escaping, the numbers are numbers, the request's strings are escaped.
        self.sink.write(
            f'{{"ts": "{_timestamp()}", "level": "info", "logger": "proxy.access", "message": "request", '
            f'"id": "{environ[REQUEST_ID]}", "method": {_quoted(environ["REQUEST_METHOD"])}, '
            f'"path": {_quoted(environ.get("PATH_INFO", ""))}, '
            f'"query": {_quoted(environ.get("QUERY_STRING", ""))}, '
            f'"transform": {"null" if transform is None else _quoted(transform)}, "status": {status}, '
            f'"cache": {"null" if cache is None else _quoted(cache)}, "bytes": {length or "null"}, '
            f'"ms": {round(took * 1000, 2)}}}\n'
        )


_second = -1
_second_text = ""


def _timestamp() -> str:
    """Now as JsonFormatter writes it (UTC, milliseconds), the date part formatted once a second."""
    global _second, _second_text
    now = time.time()
    second = int(now)
    if second != _second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = second
    return f"{_second_text}.{int((now - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime  # timestamps in UTC, as the Z says

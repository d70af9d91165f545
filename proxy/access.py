"""Request ids, structured logs (one JSON line per request, JSON for errors too), and the
requests counter.

A request keeps the ``X-Request-Id`` it arrives with (nginx sets one), or gets a new one;
the id is echoed in the response and appears in every log line about the request, so an
error a client reports can be found. ``JsonFormatter`` is what gunicorn.conf.py installs
for the access and error logs.

``AccessLog`` is WSGI middleware rather than Flask hooks: it sees the request once, at the
edge, and reads what it records from the WSGI environ and the response's status and headers,
which costs a cache hit a fraction of what request-context lookups in three hooks did.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterable
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


def request_id() -> str:
    """The current request's id (set before the app runs)."""
    return str(request.environ.get(REQUEST_ID, "-"))


class AccessLog:
    """WSGI middleware: give the request its id, echo it, count the answer and log one line."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

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

    @staticmethod
    def _record(environ: WSGIEnvironment, status: int, headers: list[tuple[str, str]], took: float) -> None:
        counter = _BY_STATUS.get(status) or _BY_STATUS.setdefault(status, REQUESTS.labels(str(status)))
        counter.inc()
        if not access_log.isEnabledFor(logging.INFO):
            return
        found = {name: value for name, value in headers if name in ("Content-Length", "X-Cache")}
        length = found.get("Content-Length")
        fields = {
            "id": environ[REQUEST_ID],
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": environ.get("QUERY_STRING", ""),
            "transform": environ.get(TRANSFORM),
            "status": status,
            "cache": found.get("X-Cache"),
            "bytes": int(length) if length is not None else None,
            "ms": round(took * 1000, 2),
        }
        access_log.info("request", extra={"fields": fields})


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

"""Request ids and structured logs: one JSON line per request, JSON for errors too.

A request keeps the ``X-Request-Id`` it arrives with (nginx sets one), or gets a new one;
the id is echoed in the response and appears in every log line about the request, so an
error a client reports can be found. ``JsonFormatter`` is what gunicorn.conf.py installs
for the access and error logs.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

access_log = logging.getLogger("proxy.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # anything else is replaced, never logged raw


def request_id() -> str:
    """This request's id (set before the view runs)."""
    return str(g.get("request_id") or "-")


def register_access_log(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-Id"] = request_id()
        if access_log.isEnabledFor(logging.INFO):
            fields = {
                "id": request_id(),
                "method": request.method,
                "path": request.path,
                "query": request.query_string.decode("latin-1"),
                "transform": g.get("transform"),
                "status": response.status_code,
                "cache": response.headers.get("X-Cache"),
                "bytes": response.content_length,
                "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
            }
            access_log.info("request", extra={"fields": fields})
        return response


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

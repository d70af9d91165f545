"""Request ids and the structured access log."""

from __future__ import annotations

import json
import logging
import os
import re
import select
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import create_environ

from proxy import create_app
from proxy.access import AccessWriter, JsonFormatter
from proxy.settings import Settings


def test_request_ids_are_kept_or_made(client: FlaskClient) -> None:
    assert (
        client.get("/image/photo.jpg?w=10", headers={"X-Request-Id": "edge-42.a"}).headers["X-Request-Id"]
        == "edge-42.a"
    )
    made = client.get("/image/photo.jpg?w=10").headers["X-Request-Id"]
    assert len(made) == 32 and made != client.get("/image/photo.jpg?w=10").headers["X-Request-Id"]
    hostile = client.get("/image/photo.jpg?w=10", headers={"X-Request-Id": "<script>" + "x" * 200})
    assert hostile.headers["X-Request-Id"].isalnum()  # replaced, never echoed
    assert client.get("/image/missing.jpg", headers={"X-Request-Id": "r1"}).headers["X-Request-Id"] == "r1"


@pytest.fixture(autouse=True)
def access_lines_on(caplog: pytest.LogCaptureFixture) -> None:
    """As gunicorn.conf.py configures it: the proxy.access logger's level says lines are wanted."""
    caplog.set_level(logging.INFO, logger="proxy.access")


def written(app: Flask, tmp_path: Path) -> Callable[[], list[dict[str, object]]]:
    """Point the app's access lines at a file; the returned function flushes and parses them."""
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    writer = AccessWriter(fd)
    app.wsgi_app.sink = writer  # type: ignore[attr-defined]

    def lines() -> list[dict[str, object]]:
        writer.flush()
        return [json.loads(line) for line in path.read_text().splitlines()]

    return lines


def test_one_json_line_per_request(settings: Settings, tmp_path: Path) -> None:
    app = create_app(settings)
    lines = written(app, tmp_path)
    client = app.test_client()
    client.get("/image/photo.jpg?w=120&fmt=webp", headers={"X-Request-Id": "req-1"})
    client.get("/image/photo.jpg?w=120&fmt=webp", headers={"X-Request-Id": "req-2"})
    client.get("/image/photo.jpg?w=abc", headers={"X-Request-Id": "req-3"})
    entries = lines()
    assert [line["id"] for line in entries] == ["req-1", "req-2", "req-3"]
    assert [line["status"] for line in entries] == [200, 200, 400]
    assert [line["cache"] for line in entries] == ["MISS", "HIT", None]
    assert entries[0]["transform"] == "w=120&h=&fit=inside&q=82&bg=ffffffff&fmt=webp"
    assert entries[0]["path"] == "/image/photo.jpg" and entries[0]["query"] == "w=120&fmt=webp"
    assert isinstance(entries[0]["bytes"], int) and entries[0]["bytes"] > 0
    assert isinstance(entries[0]["ms"], float) and entries[0]["ms"] >= 0 and entries[0]["level"] == "info"


def test_lines_have_the_formatters_layout_and_escape_what_the_request_sent(
    settings: Settings, tmp_path: Path
) -> None:
    """The line is built without logging, so compare it with what JsonFormatter makes of the same
    fields; hostile paths and queries (quotes, backslashes, controls, non-ASCII) stay one line."""
    app = create_app(settings)
    lines = written(app, tmp_path)
    environ = create_environ("/image/x.jpg", headers={"X-Request-Id": "h-1"})
    environ["PATH_INFO"] = '/image/a"b\\c\x01\xe9.jpg'  # as a server passes raw bytes: latin-1
    environ["QUERY_STRING"] = 'w="1"\\&x=\n\t'
    body = app.wsgi_app(environ, lambda status, headers, exc_info=None: None)
    b"".join(body)
    (entry,) = lines()
    assert entry["path"] == environ["PATH_INFO"] and entry["query"] == environ["QUERY_STRING"]
    assert entry["status"] == 400 and entry["id"] == "h-1"  # w is not a number
    record = logging.LogRecord("proxy.access", logging.INFO, "", 0, "request", None, None)
    record.fields = {k: v for k, v in entry.items() if k not in ("ts", "level", "logger", "message")}
    expected = json.loads(JsonFormatter().format(record))
    assert list(entry) == list(expected)  # the same keys, in the same order
    assert {k: v for k, v in entry.items() if k != "ts"} == {k: v for k, v in expected.items() if k != "ts"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(entry["ts"]))


def test_lines_wait_at_most_a_moment_and_come_whole(tmp_path: Path) -> None:
    read, write = os.pipe()
    writer = AccessWriter(write)
    for n in range(2000):  # ~160 KB: more than a pipe write is atomic for, in many writes
        writer.write(f'{{"n": {n}, "pad": "{"x" * 64}"}}\n')
    deadline = time.monotonic() + 2
    data = b""
    while data.count(b"\n") < 2000 and time.monotonic() < deadline:
        if select.select([read], [], [], 0.05)[0]:
            data += os.read(read, 1 << 16)
    assert [json.loads(line)["n"] for line in data.splitlines()] == list(range(2000))
    os.close(read)
    os.close(write)


def test_a_500_names_its_request_id(
    settings: Settings, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    app = create_app(replace(settings))
    lines = written(app, tmp_path)
    app.extensions["proxy"].cache.fetch = None  # sabotage
    with caplog.at_level(logging.ERROR, logger="proxy.errors"):
        response = app.test_client().get("/image/photo.jpg", headers={"X-Request-Id": "trace-me"})
    assert response.status_code == 500 and response.get_json()["request_id"] == "trace-me"
    record = next(r for r in caplog.records if r.name == "proxy.errors")
    entry = json.loads(JsonFormatter().format(record))
    assert entry["id"] == "trace-me" and "Traceback" in entry["exception"]
    assert [(line["id"], line["status"]) for line in lines()] == [("trace-me", 500)]

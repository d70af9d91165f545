"""Request ids and the structured access log."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy.access import JsonFormatter
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


def test_one_json_line_per_request(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="proxy.access"):
        client.get("/image/photo.jpg?w=120&fmt=webp", headers={"X-Request-Id": "req-1"})
        client.get("/image/photo.jpg?w=120&fmt=webp", headers={"X-Request-Id": "req-2"})
        client.get("/image/photo.jpg?w=abc", headers={"X-Request-Id": "req-3"})
    lines = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if record.name == "proxy.access"
    ]
    assert [line["id"] for line in lines] == ["req-1", "req-2", "req-3"]
    assert [line["status"] for line in lines] == [200, 200, 400]
    assert [line["cache"] for line in lines] == ["MISS", "HIT", None]
    assert lines[0]["transform"] == "w=120&h=&fit=inside&q=82&bg=ffffffff&fmt=webp"
    assert lines[0]["path"] == "/image/photo.jpg" and lines[0]["query"] == "w=120&fmt=webp"
    assert lines[0]["bytes"] > 0 and lines[0]["ms"] >= 0 and lines[0]["level"] == "info"


def test_a_500_names_its_request_id(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(replace(settings))
    app.extensions["proxy"].cache.fetch = None  # sabotage
    with caplog.at_level(logging.ERROR, logger="proxy.errors"):
        response = app.test_client().get("/image/photo.jpg", headers={"X-Request-Id": "trace-me"})
    assert response.status_code == 500 and response.get_json()["request_id"] == "trace-me"
    record = next(r for r in caplog.records if r.name == "proxy.errors")
    entry = json.loads(JsonFormatter().format(record))
    assert entry["id"] == "trace-me" and "Traceback" in entry["exception"]

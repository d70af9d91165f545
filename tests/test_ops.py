"""/healthz and /readyz: for load balancers, never signed, never cached."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from flask.testing import FlaskClient

from proxy import create_app
from proxy.settings import Settings


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_when_ready(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"image_root": True, "cache": True, "encoders": True}


def test_readyz_without_an_image_root(settings: Settings, image_root: Path) -> None:
    client = create_app(settings).test_client()
    shutil.rmtree(image_root)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["checks"]["image_root"] is False


def test_readyz_without_a_usable_cache(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    client = create_app(replace(settings, cache_dir=blocker)).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["checks"]["cache"] is False
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_probes_need_no_signature(settings: Settings) -> None:
    client = create_app(replace(settings, secret="a-secret-long-enough")).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/image/photo.jpg").status_code == 403

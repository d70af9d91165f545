"""/healthz and /readyz: for load balancers, never signed, never cached."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from flask.testing import FlaskClient

from proxy import create_app
from proxy.settings import Settings


def test_healthz(client: FlaskClient, settings: Settings) -> None:
    response = client.get("/healthz")
    bound = settings.cache_size
    cache = {"state": "ok", "bound": bound, "effective": bound}
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "cache": cache}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_when_ready(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["checks"] == {"image_root": True, "encoders": True}
    assert body["cache"]["state"] == "ok" and body["cache"]["writable"] is True


def test_readyz_without_an_image_root(settings: Settings, image_root: Path) -> None:
    client = create_app(settings).test_client()
    shutil.rmtree(image_root)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["checks"]["image_root"] is False


def test_a_cache_down_does_not_make_the_instance_unready(settings: Settings, tmp_path: Path) -> None:
    """Images are served uncached meanwhile: the cache's state is shown, not made a condition."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    client = create_app(replace(settings, cache_dir=blocker)).test_client()
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json()["status"] == "ready"
    assert response.get_json()["cache"] == {
        "state": "down",
        "bound": settings.cache_size,
        "effective": settings.cache_size,
        "writable": False,
    }
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json()["cache"]["state"] == "down"
    image = client.get("/image/photo.jpg?w=50")
    assert image.status_code == 200 and image.headers["X-Cache"] == "MISS"


def test_probes_need_no_signature(settings: Settings) -> None:
    client = create_app(replace(settings, secret="a-secret-long-enough")).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/image/photo.jpg").status_code == 403

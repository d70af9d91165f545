"""Endpoints for load balancers and orchestrators; never signed, never cached.

``/healthz`` answers as long as the worker can answer at all (liveness: cheap, touches
nothing). ``/readyz`` checks what serving images needs: the local image roots readable, the cache
writable, the encoders present; 503 when any is missing, so traffic goes elsewhere.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify

from .formats import FORMATS

if TYPE_CHECKING:
    from .app import Origin

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz() -> Response:
    return _answer({"status": "ok"}, 200)


@ops.get("/readyz")
def readyz() -> Response:
    origin: Origin = current_app.extensions["proxy"]
    roots = [mount.location for mount in origin.settings.mounts if mount.scheme == "file"]
    checks = {
        "image_root": all(os.path.isdir(root) and os.access(root, os.R_OK | os.X_OK) for root in roots),
        "cache": origin.cache.writable(),
        "encoders": all(name in FORMATS for name in ("png", "jpeg", "webp")),
    }
    ready = all(checks.values())
    return _answer({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)


def _answer(body: dict[str, object], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response

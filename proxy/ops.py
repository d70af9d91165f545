"""Endpoints for load balancers and orchestrators; never signed, never cached.

``/healthz`` answers as long as the worker can answer at all (liveness: cheap, touches
nothing), with the cache's state as this worker last saw it: ``ok``, ``degraded`` (held under
its configured bound for lack of disk space) or ``down``, and its configured and effective
bounds in bytes. ``/readyz`` checks what serving images needs: the local image roots readable
and the encoders present; 503 when either is missing, so traffic goes elsewhere. The cache is
not among them: a degraded or even a down cache still serves every image (uncached), so it is
reported beside the checks (after trying a write), never a reason to take traffic away.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify

from .formats import FORMATS

if TYPE_CHECKING:
    from .origin import Origin

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz() -> Response:
    origin: Origin = current_app.extensions["proxy"]
    return _answer({"status": "ok", "cache": origin.cache.health()}, 200)


@ops.get("/readyz")
def readyz() -> Response:
    origin: Origin = current_app.extensions["proxy"]
    roots = [mount.location for mount in origin.settings.mounts if mount.scheme == "file"]
    checks = {
        "image_root": all(os.path.isdir(root) and os.access(root, os.R_OK | os.X_OK) for root in roots),
        "encoders": all(name in FORMATS for name in ("png", "jpeg", "webp")),
    }
    ready = all(checks.values())
    writable = origin.cache.writable()  # first: a failing write shows in the state below
    cache = {**origin.cache.health(), "writable": writable}
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks, "cache": cache}
    return _answer(body, 200 if ready else 503)


def _answer(body: dict[str, object], status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response

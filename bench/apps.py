"""Baselines served by the same gunicorn configuration as the origin, for bench/http_load.py.

bare:  a Flask app returning fixed bytes from memory with the origin's headers: the ceiling
       for a cache hit in Python under these gunicorn settings.
naive: the original design, per request: cv2.imread at full size, cv2.resize with its
       default interpolation, cv2.imencode; no cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
from flask import Flask, Response, request


def bare() -> Flask:
    data = Path(os.environ["BENCH_BYTES"]).read_bytes()
    app = Flask(__name__)

    @app.get("/image/<path:image_id>")
    def image(image_id: str) -> Response:
        headers = {"ETag": '"bench"', "Cache-Control": "public, max-age=86400", "X-Cache": "HIT"}
        return Response(data, mimetype="image/webp", headers=headers)

    return app


def naive() -> Flask:
    root = Path(os.environ["PROXY_IMAGE_ROOT"])
    app = Flask(__name__)

    @app.get("/image/<path:image_id>")
    def image(image_id: str) -> Response:
        original = cv2.imread(str(root / image_id))
        width = int(request.args.get("w", original.shape[1]))
        height = round(original.shape[0] * width / original.shape[1])
        ok, encoded = cv2.imencode(".jpg", cv2.resize(original, (width, height)))
        return Response(encoded.tobytes(), mimetype="image/jpeg")

    return app

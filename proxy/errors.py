"""One exception tree, rendered to HTTP in one place.

    ProxyError                 500  (base; never raised directly)
    ├── InvalidParameter       400  a query parameter is unknown, malformed or over a limit
    ├── MissingToken           401  a PURGE without a bearer token
    ├── BadSignature           403  signing is on and ``sig`` is missing or wrong
    ├── BadToken               403  a PURGE with the wrong token
    ├── BlockedAddress         403  a fetch would reach a loopback, private or otherwise internal address
    ├── NotFound               404  unknown id, or one that escapes the image root
    ├── SourceTooLarge         413  the original is over a size limit
    ├── UnsupportedImage       415  the original is not an image we can decode
    ├── UpstreamFailed         502  a remote source failed (5xx, refused, malformed) and no copy is known
    ├── Overloaded             503  the wait for a transform slot is or was too long, or the deadline passed
    └── UpstreamTimeout        504  a remote source did not answer in time and no copy is known

Every error answer is JSON with ``Cache-Control: no-store``, so that neither a
CDN nor a browser keeps an error as if it were the image. Anything else that
escapes a view is logged with the request's id and answered 500 without
internals.
"""

from __future__ import annotations

import functools
import logging
from typing import ClassVar

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .access import request_id
from .metrics import REFUSALS

log = logging.getLogger(__name__)


class ProxyError(Exception):
    """Base class: an HTTP status plus a message that is safe to show to clients."""

    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, object]:
        return {"status": self.status, "error": self.message}


class InvalidParameter(ProxyError):
    status = 400

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter

    def body(self) -> dict[str, object]:
        return {**super().body(), "parameter": self.parameter}


class BadSignature(ProxyError):
    status = 403

    def __init__(self, message: str = "missing or invalid signature") -> None:
        super().__init__(message)


class MissingToken(ProxyError):
    status = 401

    def __init__(self, message: str = "PURGE needs Authorization: Bearer <PROXY_PURGE_TOKEN>") -> None:
        super().__init__(message)


class BadToken(ProxyError):
    status = 403

    def __init__(self, message: str = "wrong purge token") -> None:
        super().__init__(message)


class BlockedAddress(ProxyError):
    status = 403


class NotFound(ProxyError):
    status = 404

    def __init__(self, message: str = "no such image") -> None:
        super().__init__(message)


class SourceTooLarge(ProxyError):
    status = 413


class UnsupportedImage(ProxyError):
    status = 415


class OverBudget(ProxyError):
    """``maxbytes``: no answer within the bounds fits in the bytes asked for."""

    status = 422


class UpstreamFailed(ProxyError):
    status = 502


class UpstreamTimeout(ProxyError):
    status = 504


class Overloaded(ProxyError):
    """Refused for lack of capacity; ``reason`` labels the refusal in the metrics."""

    status = 503

    def __init__(self, message: str, reason: str = "deadline", retry_after: int = 1) -> None:
        super().__init__(message)
        self.reason = reason  # expected_wait, waited, queue_full, deadline
        self.retry_after = retry_after  # seconds, sent as Retry-After: the expected wait


def error_response(status: int, body: dict[str, object]) -> Response:
    """JSON for clients that read it, and the reason in ``X-Error`` for those that cannot: a
    browser drops an error body answered to an ``<img>`` without a console message."""
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Error"] = _header_safe(str(body.get("error", "")))
    return response


def placeholder_response(status: int, message: str) -> Response:
    """A small grey PNG showing the status, with the same status, X-Error and no-store: a page
    shows something in the image's place, and the reason is one click away in the network panel."""
    response = Response(_placeholder(status), status=status, mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Error"] = _header_safe(message)
    return response


@functools.lru_cache(maxsize=16)
def _placeholder(status: int) -> bytes:
    import cv2  # the pipeline's library; imported here, where only an error needs it
    import numpy as np

    image = np.full((90, 160, 3), 224, np.uint8)
    cv2.putText(image, str(status), (38, 58), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (96, 96, 96), 2, cv2.LINE_AA)
    return bytes(cv2.imencode(".png", image)[1])


def _wants_an_image(accept: str) -> bool:
    """A browser loading an <img> names image types first; fetch() and curl send */*."""
    return accept.split(",", 1)[0].strip().lower().startswith("image/")


def _header_safe(text: str, limit: int = 300) -> str:
    """One line of printable ASCII: what any client can carry in a header."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return cleaned[:limit]


def register_error_handlers(app: Flask, error_images: bool = False) -> None:
    """Map every failure to a JSON answer; the only place that does so. With ``error_images``
    (PROXY_ERROR_IMAGE=1), a browser's image request gets a placeholder image instead."""

    @app.errorhandler(ProxyError)
    def _proxy_error(error: ProxyError) -> Response:
        if error_images and _wants_an_image(request.headers.get("Accept", "")):
            response = placeholder_response(error.status, error.message)
        else:
            response = error_response(error.status, error.body())
        if isinstance(error, Overloaded):
            REFUSALS.labels(error.reason).inc()
            response.headers["Retry-After"] = str(error.retry_after)
        elif isinstance(error, MissingToken):
            response.headers["WWW-Authenticate"] = 'Bearer realm="purge"'
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        # Routing failures (unknown path, 405) keep werkzeug's status and headers (Allow).
        status = error.code or 500
        message = NotFound().message if status == 404 else error.name  # one 404, whatever the cause
        response = error_response(status, {"status": status, "error": message})
        if status == 405:
            response.headers["Allow"] = error.get_response().headers.get("Allow", "GET, HEAD")
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        ident = request_id()
        log.exception("unhandled error", extra={"fields": {"id": ident, "path": request.path}})
        response = error_response(500, {"status": 500, "error": "internal error", "request_id": ident})
        return response

"""HTTP caching for image responses: validators, Cache-Control, conditional requests.

The ETag derives from the variant's cache key (original id and version, canonical
transform, negotiated target, pipeline version), so it is known before any
pixel is read: a revalidation is answered from a ``stat`` alone, and every
worker and every restart computes the same tag for the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Response
from werkzeug.http import http_date, is_resource_modified
from werkzeug.wsgi import wrap_file

from .cache import Variant

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.datastructures import Headers


@dataclass(frozen=True)
class Validators:
    etag: str  # unquoted, strong
    last_modified: datetime
    cache_control: str  # from cache_control(), built once per app
    vary_accept: bool  # the format was negotiated from Accept
    tags: dict[str, str]  # cache tag headers (purge.py)

    def headers(self) -> dict[str, str]:
        """What a 200 and a 304 both carry (RFC 9110 15.4.5)."""
        headers = {
            "ETag": f'"{self.etag}"',
            "Last-Modified": http_date(self.last_modified),
            "Cache-Control": self.cache_control,
            **self.tags,
        }
        if self.vary_accept:
            headers["Vary"] = "Accept"
        return headers


def cache_control(max_age: int, stale_while_revalidate: int, stale_if_error: int) -> str:
    """``public, max-age`` and the RFC 5861 stale allowances that are not zero: a front may
    answer from a stale copy while it revalidates, or while the origin fails."""
    parts = [f"public, max-age={max_age}"]
    if stale_while_revalidate:
        parts.append(f"stale-while-revalidate={stale_while_revalidate}")
    if stale_if_error:
        parts.append(f"stale-if-error={stale_if_error}")
    return ", ".join(parts)


EXPOSED = "ETag, X-Cache, X-Error"  # what a cross-origin page's fetch() may read besides the basics


def cors_headers(allowed: tuple[str, ...], origin: str | None) -> dict[str, str]:
    """CORS and Resource Timing for an image answer (200, 304 or error), so that ``<img
    crossorigin>`` can be drawn on a canvas and RUM scripts see transfer sizes.

    ``*`` allows any page and needs no ``Vary``; a list answers with the request's ``Origin``
    when it is listed, and varies on it either way; an empty list sends nothing.
    """
    if not allowed:
        return {}
    if allowed == ("*",):
        return {
            "Access-Control-Allow-Origin": "*",
            "Timing-Allow-Origin": "*",
            "Access-Control-Expose-Headers": EXPOSED,
        }
    if origin is not None and origin in allowed:
        return {
            "Access-Control-Allow-Origin": origin,
            "Timing-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSED,
            "Vary": "Origin",
        }
    return {"Vary": "Origin"}


def etag_for(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def is_not_modified(environ: WSGIEnvironment, validators: Validators) -> bool:
    """RFC 9110 13.2.2: If-None-Match (weak comparison, ``*`` included) when present,
    else If-Modified-Since. werkzeug implements exactly this precedence."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match == f'"{validators.etag}"':
        return True  # what caches send back: our tag as we gave it, matched without parsing
    if if_none_match is None and "HTTP_IF_MODIFIED_SINCE" not in environ:
        return False  # not a conditional request
    return not is_resource_modified(environ, etag=validators.etag, last_modified=validators.last_modified)


class _NotModified(Response):
    """A 304 with exactly the headers it is given: the validators, Cache-Control and Vary.

    werkzeug's own 304 handling strips RFC 2616 "entity headers", Last-Modified among them,
    but caches holding a copy use it to refresh their stored headers; and with nothing to
    strip or add, skipping that work makes a 304 cheaper than a hit, as it should be.
    """

    default_mimetype = None  # no Content-Type: there is no content

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        return self.headers


def not_modified_response(validators: Validators) -> Response:
    return _NotModified(status=304, headers=validators.headers())


def image_response(variant: Variant, validators: Validators, environ: WSGIEnvironment) -> Response:
    """The image, from memory or streamed from its cache file (sendfile under gunicorn)."""
    headers = {
        **validators.headers(),
        "Content-Type": variant.mime,  # as is: image types take no charset
        "Content-Length": str(variant.length),
        "X-Cache": "HIT" if variant.hit else "MISS",
        "X-Content-Type-Options": "nosniff",
    }
    if isinstance(variant.body, bytes):
        body: Iterable[bytes] = [variant.body]
    elif environ["REQUEST_METHOD"] == "HEAD":
        variant.body.close()  # werkzeug sends no body for HEAD, and so would never close the file
        body = []
    else:
        body = wrap_file(environ, variant.body)
    # Headers in one go and the body passed through: werkzeug has nothing left to work out.
    return Response(body, headers=headers, direct_passthrough=True)

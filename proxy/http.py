"""HTTP for image answers: validators, Cache-Control, CORS, conditional requests, and the
responses that carry them.

The ETag derives from the variant's cache key (original id and version, canonical
transform, negotiated target, pipeline version), so it is known before any
pixel is read: a revalidation is answered from a ``stat`` alone, and every
worker and every restart computes the same tag for the same bytes.

A variant's headers are the same on every answer of it, but for what the request itself
changes (whether the format was negotiated, the page's ``Origin`` when CORS names pages):
``VariantHeaders`` builds them once, a 304's whole and a 200's per body, as ready lists, and
``ReadyResponse`` hands such a list to the server as it is. werkzeug building, checking and
copying a dozen headers one at a time, and a hook adding CORS to every answer, had cost a
cache hit a third of a bare Flask app's throughput (docs/performance.md).

Every other answer under /image/, /url/ and /info/ (errors, PURGE, routing's own) gets its CORS
headers from ``ProxyResponse``, the app's response class, as the server is handed its headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app, has_app_context
from werkzeug.http import http_date, is_resource_modified
from werkzeug.wsgi import wrap_file

from .cache import Variant
from .keys import key_hash

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment
    from werkzeug.datastructures import Headers

Header = tuple[str, str]
IMAGE_PATHS = ("/image/", "/url/", "/info/")  # the answers that carry CORS headers
EXPOSED = "ETag, X-Cache, X-Error"  # what a cross-origin page's fetch() may read besides the basics
_CORS = "proxy.cors"  # the app's Cors, in app.extensions (use_cors)


def cache_control(max_age: int, stale_while_revalidate: int, stale_if_error: int) -> str:
    """``public, max-age`` and the RFC 5861 stale allowances that are not zero: a front may
    answer from a stale copy while it revalidates, or while the origin fails."""
    parts = [f"public, max-age={max_age}"]
    if stale_while_revalidate:
        parts.append(f"stale-while-revalidate={stale_while_revalidate}")
    if stale_if_error:
        parts.append(f"stale-if-error={stale_if_error}")
    return ", ".join(parts)


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


@dataclass(frozen=True)
class Cors:
    """PROXY_CORS_ORIGINS, and what of a request's ``Origin`` header changes the answer."""

    allowed: tuple[str, ...]

    def page(self, origin: str | None) -> str | None:
        """The ``Origin`` the answer names: a listed page's; None when every page gets the same
        headers (``*``, off, or a page not listed, which gets only ``Vary: Origin``)."""
        listed = self.allowed != ("*",) and origin is not None and origin in self.allowed
        return origin if listed else None

    def headers(self, origin: str | None) -> dict[str, str]:
        return cors_headers(self.allowed, origin)


def etag_for(key: str) -> str:
    return key_hash(key)


class VariantHeaders:
    """The headers of one variant's answers, for one kind of request (format negotiated or not,
    the CORS page), built once: a 304's, and a 200's for each body seen (its type, length, and
    whether it was a hit). Shared by the requests of a worker's threads: never changed once
    built, only added to."""

    __slots__ = ("etag", "last_modified", "not_modified", "_quoted", "_validators", "_cors", "_ok")

    def __init__(
        self,
        etag: str,  # unquoted, strong
        last_modified: datetime,
        cache_control: str,  # from cache_control(), built once per app
        vary: tuple[str, ...],  # the request headers that chose the answer: Accept, client hints
        tags: dict[str, str],  # cache tag headers (purge.py)
        cors: dict[str, str],  # cors_headers() for the request's page
    ) -> None:
        self.etag = etag
        self.last_modified = last_modified
        self._quoted = f'"{etag}"'
        validators = [
            ("ETag", self._quoted),
            ("Last-Modified", http_date(last_modified)),
            ("Cache-Control", cache_control),
            *tags.items(),
        ]
        if vary:
            validators.append(("Vary", ", ".join(vary)))
        self._validators = tuple(validators)
        self._cors = cors
        # What a 200 and a 304 both carry (RFC 9110 15.4.5), and only that: werkzeug's own 304
        # strips RFC 2616 "entity headers", Last-Modified among them, which caches holding a copy
        # use to refresh their stored headers.
        self.not_modified: tuple[Header, ...] = _with_cors(validators, cors)
        self._ok: dict[tuple[str, int, str], tuple[Header, ...]] = {}

    def ok(self, mime: str, length: int, outcome: str) -> tuple[Header, ...]:
        """A 200's headers for a body of type ``mime`` and ``length`` bytes, which came from
        ``outcome`` (cache.HIT, MISS or SHARED: the X-Cache header)."""
        ready = self._ok.get((mime, length, outcome))
        if ready is None:
            body = [
                ("Content-Type", mime),  # as is: image types take no charset
                ("Content-Length", str(length)),
                ("X-Cache", outcome),
                ("X-Content-Type-Options", "nosniff"),
            ]
            ready = _with_cors([*self._validators, *body], self._cors)
            if len(self._ok) >= 8:  # a variant has one body; a re-render may give another length
                self._ok.clear()
            self._ok[mime, length, outcome] = ready
        return ready

    def is_not_modified(
        self, if_none_match: str | None, if_modified_since: str | None, if_match: str | None
    ) -> bool:
        """RFC 9110 13.2.2: If-None-Match (weak comparison, ``*`` included) when present,
        else If-Modified-Since. werkzeug implements exactly this precedence."""
        if if_none_match == self._quoted:
            return True  # what caches send back: our tag as we gave it, matched without parsing
        if if_none_match is None and if_modified_since is None:
            return False  # not a conditional request
        conditions = {
            "HTTP_IF_NONE_MATCH": if_none_match,
            "HTTP_IF_MODIFIED_SINCE": if_modified_since,
            "HTTP_IF_MATCH": if_match,
        }
        environ = {name: value for name, value in conditions.items() if value is not None}
        return not is_resource_modified(environ, etag=self.etag, last_modified=self.last_modified)


def _with_cors(headers: Iterable[Header], cors: dict[str, str]) -> tuple[Header, ...]:
    """``headers`` with ``cors`` set on them: Vary extended, the others set or added."""
    merged = list(headers)
    names = [name for name, _ in merged]
    for name, value in cors.items():
        if name in names:
            at = names.index(name)
            merged[at] = (name, f"{merged[at][1]}, {value}" if name == "Vary" else value)
        else:
            merged.append((name, value))
            names.append(name)
    return tuple(merged)


class ProxyResponse(Response):
    """The app's response class (use_cors): an answer under /image/, /url/ or /info/ built without its
    CORS headers (an error, a PURGE's, routing's own) gets them as the server is handed its
    headers, after every handler, and once: not a hook run for every hit as well."""

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        headers = super().get_wsgi_headers(environ)
        path = "/" + str(environ.get("PATH_INFO") or "").lstrip("/")  # request.path, as werkzeug makes it
        if path.startswith(IMAGE_PATHS) and has_app_context():
            cors: Cors | None = current_app.extensions.get(_CORS)
            for name, value in (cors.headers(environ.get("HTTP_ORIGIN")) if cors else {}).items():
                if name == "Vary" and "Vary" in headers:
                    headers["Vary"] += ", " + value
                else:
                    headers[name] = value
        return headers


class ReadyResponse(ProxyResponse):
    """An image answer whose headers are ready (VariantHeaders): werkzeug sets, checks and
    copies none of them, and the server gets a copy of the list (middleware adds to it)."""

    default_mimetype = None  # the ready headers name the type, or there is no content

    def __init__(self, body: Iterable[bytes], status: int, headers: Sequence[Header]) -> None:
        super().__init__(body, status=status, direct_passthrough=True)
        self._ready = headers

    def get_wsgi_response(self, environ: WSGIEnvironment) -> tuple[Iterable[bytes], str, list[Header]]:
        added = self.headers.to_wsgi_list()  # by whatever ran after the view: usually nothing
        return self.get_app_iter(environ), self.status, [*self._ready, *added]

    def get_app_iter(self, environ: WSGIEnvironment) -> Iterable[bytes]:
        """The body as given (a list, or a file the server sends and closes), or none for a 304
        or a HEAD, whose body, if a file, image_response has closed."""
        if self.status_code == 304 or environ["REQUEST_METHOD"] == "HEAD":
            return ()
        return self.response  # type: ignore[return-value]  # bytes, as image_response gave it


def use_cors(app: Flask, cors: Cors) -> None:
    """Answer with ProxyResponse, which adds ``cors``'s headers where they are not built in."""
    app.response_class = ProxyResponse
    app.extensions[_CORS] = cors


def image_response(
    status: int, headers: Sequence[Header], variant: Variant | None, environ: WSGIEnvironment
) -> Response:
    """The answer: the image from memory or streamed from its cache file (sendfile under
    gunicorn), or no content (a 304), with its ready headers."""
    if variant is None:
        body: Iterable[bytes] = ()
    elif isinstance(variant.body, bytes):
        body = [variant.body]
    elif environ["REQUEST_METHOD"] == "HEAD":
        variant.body.close()  # werkzeug sends no body for HEAD, and so would never close the file
        body = []
    else:
        body = wrap_file(environ, variant.body)
    return ReadyResponse(body, status, headers)

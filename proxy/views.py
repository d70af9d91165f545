"""The ``/image/<id>`` and ``/url/<encoded>`` views, and ``/info/`` of either: HTTP in and out only.

A view checks the signature, reads what the request asks into an ``ImageRequest`` and hands it to
the origin (origin.py, where the request's life reads top to bottom), or for /info/ to proxy/info/;
the ``ImageAnswer`` it gets back becomes the response, its headers as they were built for the
variant (http.py).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify, request

from . import info as about
from .access import TRANSFORM
from .errors import BadToken, MissingToken, NotFound
from .http import image_response
from .keys import original_tag
from .origin import ImageAnswer, ImageRequest, Origin
from .params import Hints
from .signing import verify
from .sources import SourceStore, check_id
from .sources.urls import url_id

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


Serve = Callable[[Origin, ImageRequest], ImageAnswer]  # Origin.serve, or info.serve

images = Blueprint("images", __name__)
purges = Blueprint("purges", __name__)  # registered only when PROXY_PURGE_TOKEN is set


# merge_slashes=False: "//etc/passwd" must be a 404, not a redirect to a path that might exist.
@images.get("/image/<path:image_id>", provide_automatic_options=False, merge_slashes=False)
def image(image_id: str) -> Response:
    return _mounted(Origin.serve, image_id)


@images.get("/url/<encoded>", provide_automatic_options=False)
def url(encoded: str) -> Response:
    """Any http(s) URL of an allowed host (PROXY_URL_HOSTS), base64url-encoded; 404 when off."""
    return _remote(Origin.serve, encoded)


@images.get("/info/<path:image_id>", provide_automatic_options=False, merge_slashes=False)
def info(image_id: str) -> Response:
    """The original's document (proxy/info/), signed, validated and cached as its images are."""
    return _mounted(about.serve, image_id)


@images.get("/info/url/<encoded>", provide_automatic_options=False)
def info_url(encoded: str) -> Response:
    """A /url/ original's document; with /url/ off, ``url/<encoded>`` is an id like any other."""
    origin: Origin = current_app.extensions["proxy"]
    return _mounted(about.serve, "url/" + encoded) if origin.urls is None else _remote(about.serve, encoded)


def _mounted(serve: Serve, image_id: str) -> Response:
    """An id of the mounts (PROXY_IMAGE_ROOT, PROXY_SOURCE), served by ``serve``."""
    origin: Origin = current_app.extensions["proxy"]
    environ = request.environ
    if origin.secrets:  # 0. signed URLs: checked before anything can be learned
        verify(environ, origin.secrets)
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
    if "%2f" in raw.partition("?")[0].lower():  # an encoded slash is a 404, like any id of that kind
        raise NotFound()
    return _answer(serve, origin, origin.store, image_id, environ)


def _remote(serve: Serve, encoded: str) -> Response:
    """A /url/ original, served by ``serve``: a 404 while /url/ is off."""
    origin: Origin = current_app.extensions["proxy"]
    if origin.urls is None:
        raise NotFound()
    if origin.secrets:  # before the URL is even decoded
        verify(request.environ, origin.secrets)
    return _answer(serve, origin, origin.urls, url_id(encoded), request.environ)


def _answer(
    serve: Serve, origin: Origin, store: SourceStore, image_id: str, environ: WSGIEnvironment
) -> Response:
    """What the request asks, from its environ, to the origin; its answer, as a response."""
    answer = serve(
        origin,
        ImageRequest(
            store,
            image_id,
            query=environ.get("QUERY_STRING", ""),
            accept=environ.get("HTTP_ACCEPT", ""),
            origin=environ.get("HTTP_ORIGIN"),
            if_none_match=environ.get("HTTP_IF_NONE_MATCH"),
            if_modified_since=environ.get("HTTP_IF_MODIFIED_SINCE"),
            if_match=environ.get("HTTP_IF_MATCH"),
            noted=functools.partial(environ.__setitem__, TRANSFORM),  # for the access log
            hints=(
                Hints(
                    environ.get("HTTP_SEC_CH_WIDTH"),
                    environ.get("HTTP_SEC_CH_DPR"),
                    environ.get("HTTP_SAVE_DATA"),
                )
                if origin.settings.client_hints
                else None
            ),
        ),
    )
    return image_response(answer.status, answer.headers, answer.variant, environ)


@purges.route(
    "/image/<path:image_id>", methods=["PURGE"], provide_automatic_options=False, merge_slashes=False
)
def purge_image(image_id: str) -> Response:
    """Drop every variant of one original from this instance (purge.py)."""
    origin: Origin = current_app.extensions["proxy"]
    _authorize(origin.settings.purge_token)
    check_id(image_id)  # an id no store could hold is a 404, as for a GET
    return _purged(origin, image_id)


@purges.route("/url/<encoded>", methods=["PURGE"], provide_automatic_options=False)
def purge_url(encoded: str) -> Response:
    origin: Origin = current_app.extensions["proxy"]
    _authorize(origin.settings.purge_token)
    return _purged(origin, url_id(encoded))


def _authorize(token: str | None) -> None:
    """401 without a bearer token, 403 with another one (compared in constant time)."""
    assert token is not None  # the routes exist only with a token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise MissingToken()
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise BadToken()


def _purged(origin: Origin, image_id: str) -> Response:
    """The count, and the original's tag in the tag headers, for a front to purge its own copies by."""
    removed = origin.purge(image_id)
    tag = original_tag(image_id)
    response = jsonify({"id": image_id, "tag": tag, "purged": removed})
    response.headers.update({"Cache-Control": "no-store", **origin.tag_headers(image_id, mount=False)})
    return response

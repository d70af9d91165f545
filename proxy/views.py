"""The ``/image/<id>`` view: the life of a request, top to bottom, HTTP in and out only."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, jsonify, request

from .access import TRANSFORM
from .errors import BadToken, MissingToken, NotFound
from .formats import FORMATS, LEGACY, SOURCE, negotiate, resolve
from .http import Validators, etag_for, image_response, is_not_modified, not_modified_response
from .keys import original_tag
from .metrics import CACHE_HITS, CACHE_MISSES
from .purge import purge
from .signing import verify
from .sources import Source, SourceStore, check_id
from .sources.urls import url_id

if TYPE_CHECKING:
    from .app import Origin

images = Blueprint("images", __name__)
purges = Blueprint("purges", __name__)  # registered only when PROXY_PURGE_TOKEN is set


# merge_slashes=False: "//etc/passwd" must be a 404, not a redirect to a path that might exist.
@images.get("/image/<path:image_id>", provide_automatic_options=False, merge_slashes=False)
def image(image_id: str) -> Response:
    origin: Origin = current_app.extensions["proxy"]
    if origin.secrets:  # 0. signed URLs: checked before anything can be learned
        verify(request.environ, origin.secrets)
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    if "%2f" in raw.partition("?")[0].lower():  # an encoded slash is a 404, like any id of that kind
        raise NotFound()
    return _serve(origin, origin.store, image_id)


@images.get("/url/<encoded>", provide_automatic_options=False)
def url(encoded: str) -> Response:
    """Any http(s) URL of an allowed host (PROXY_URL_HOSTS), base64url-encoded; 404 when off."""
    origin: Origin = current_app.extensions["proxy"]
    if origin.urls is None:
        raise NotFound()
    if origin.secrets:  # before the URL is even decoded
        verify(request.environ, origin.secrets)
    return _serve(origin, origin.urls, url_id(encoded))


def _serve(origin: Origin, store: SourceStore, image_id: str) -> Response:
    """The life of an image request, once its signature is checked."""
    environ = request.environ
    params = origin.parse(environ.get("QUERY_STRING", ""))  # 1. parse once
    source = store.resolve(image_id)  # 2. locate; metadata only
    target = negotiate(params.fmt, environ.get("HTTP_ACCEPT", ""), origin.settings.auto_formats)
    if target in (SOURCE, LEGACY):  # the original's header names the format: remembered, so a look-up
        target = resolve(target, origin.kind(store, source), params.frame)  # resolved once, here
    environ[TRANSFORM] = f"{params.transform}&fmt={target}"  # for the access log
    key = origin.variant_key(source, params, target)  # 3. key, before any pixel
    validators = Validators(
        etag=etag_for(key),
        last_modified=source.last_modified,
        cache_control=origin.cache_control,
        vary_accept=params.fmt == "auto",
        tags=origin.tag_headers(source.id),
    )
    if is_not_modified(environ, validators):  # 4. a stat, usually
        origin.kind(store, source)  # only an image gets a 304; anything else its 415 (remembered)
        return not_modified_response(validators)
    variant = origin.cache.fetch(  # 5. a hit decodes nothing; a miss renders once across workers
        key,
        produce=lambda: origin.render(store, source, params, FORMATS[target]),  # the format the key names
        keep=lambda: _unchanged(store, source),
        tag=original_tag(source.id),
    )
    (CACHE_HITS if variant.hit else CACHE_MISSES).inc()
    return image_response(variant, validators, environ)  # 6.


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
    stores = (origin.store,) if origin.urls is None else (origin.store, origin.urls)
    removed = purge(image_id, origin.cache, stores)
    tag = original_tag(image_id)
    response = jsonify({"id": image_id, "tag": tag, "purged": removed})
    response.headers.update({"Cache-Control": "no-store", **origin.tag_headers(image_id, mount=False)})
    return response


def _unchanged(store: SourceStore, source: Source) -> bool:
    """Whether the original is still the version we rendered: a replaced one must not be cached."""
    try:
        return store.resolve(source.id).version == source.version
    except NotFound:
        return False

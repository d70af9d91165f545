"""``/info/<id>``: what an original is, as JSON, computed once per original version and cached,
and answered as an image is (signature, ETag and 304, Cache-Control, cache tags, CORS).

``serve`` is the life of an /info request, in the image's order (origin.py):

    1. the query: nothing but ``v`` (and ``sig``), parsed by params.py as an image's is (400)
    2. resolve the id -> Source, its version only (404); only an image has a document (415,
       remembered per version as for images: Origin.kind)
    3. key and ETag <- id + version + INFO_VERSION + PIPELINE_VERSION + whether GPS is shown
    4. If-None-Match matches? 304, from the version alone
    5. the cache: the document, or worked out once across workers (the key's lock; the
       original made local first, then a transform slot and the deadline, as a render) and
       stored under the original's tag, so that a purge drops it with the variants
    6. respond: the image's headers (VariantHeaders), ``application/json``, X-Cache

The modules, top to bottom (none imports this face):

    document.py      the document: header, thumbnail, animation, and the others' answers
    exif.py          the EXIF subset and the ICC profile's name, from the header
    colors.py        average and dominant colours of the thumbnail
    placeholders.py  BlurHash and ThumbHash encoders
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from .. import keys
from ..cache import HIT, MISS, Variant
from ..errors import InvalidParameter, NotFound
from ..keys import original_tag
from ..limits import Limits
from ..origin import ImageAnswer, ImageRequest, Origin
from ..params import ImageParams
from .document import describe

if TYPE_CHECKING:
    from ..sources import Source, SourceStore

JSON = "application/json"  # UTF-8 by definition (RFC 8259): no charset
NOTED = "info"  # what the access log's transform field says of an /info request
_PLAIN = ImageParams().transform  # a query that asks for no transform: v= (and sig=) at most


def serve(origin: Origin, request: ImageRequest) -> ImageAnswer:
    """The life of an /info request, once its signature is checked."""
    if origin.parse(request.query).transform != _PLAIN:  # 1. parse once; v= is the one parameter
        raise InvalidParameter("query", "/info takes no parameters but v (and sig)")
    store = request.store
    source = store.resolve(request.image_id)  # 2. locate: metadata only
    if request.noted is not None:
        request.noted(NOTED)  # for the access log, whatever follows
    origin.kind(store, source)  # only an image has a document: a 415 otherwise, remembered
    gps = origin.settings.info_gps
    key = keys.info_key(source.id, source.version, gps)  # 3. the key, and the ETag from it
    headers = origin.headers(key, source, False, request.origin)  # built once per worker, as an image's
    if headers.is_not_modified(request.if_none_match, request.if_modified_since, request.if_match):  # 4.
        return ImageAnswer(304, headers.not_modified, None)
    body, outcome = _document(origin, store, source, key, gps)  # 5. a hit decodes nothing
    variant = Variant(JSON, len(body), body, outcome)
    return ImageAnswer(200, headers.ok(JSON, len(body), outcome), variant)  # 6.


def _document(origin: Origin, store: SourceStore, source: Source, key: str, gps: bool) -> tuple[bytes, str]:
    """The stored document and HIT, or one worked out now (once across workers) and MISS."""
    cache = origin.cache
    found = cache.get_blob(key)
    if found is not None:
        return found, HIT
    with cache.lock(key):
        found = cache.get_blob(key)  # its last holder may have stored it meanwhile
        if found is not None:
            return found, HIT
        body = _described(origin, store, source, gps)
        if _unchanged(store, source):  # a document of a replaced original must not be kept
            cache.put_blob(key, body, original_tag(source.id))
        return body, MISS


def _described(origin: Origin, store: SourceStore, source: Source, gps: bool) -> bytes:
    """The document as JSON: the original local first (a remote one fetched before a slot is
    taken), then worked out in a transform slot, under the transform deadline."""
    settings = origin.settings
    with store.local(source) as path, origin.gate.slot():
        limits = Limits.from_settings(settings, time.monotonic() + settings.transform_deadline)
        document = {"id": source.id, **describe(path, limits, gps)}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _unchanged(store: SourceStore, source: Source) -> bool:
    try:
        return store.resolve(source.id).version == source.version
    except NotFound:
        return False


__all__ = ["JSON", "NOTED", "serve"]

"""The playground at ``/``: see what every parameter does, and copy working markup.

On only with ``PROXY_PLAYGROUND=1`` (``make serve`` sets it): an origin behind a CDN should
not expose it. The page is server-rendered (templates/playground.html) with a little plain
JavaScript (static/playground.js), everything served from here, so it works offline. Every
URL it shows or loads is built by the server, with ``proxy.urls``, through ``/playground/url``:
the same code a site would use, and signed when signing is on, so the secret never reaches
the browser.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from werkzeug.datastructures import MultiDict

from .errors import BadSignature, InvalidParameter
from .formats import REQUESTABLE
from .params import FITS, GRAVITIES, KNOWN, MARK_PLACES, parse_params
from .probe import probe
from .sources import check_id
from .urls import image_url, img_tag, picture_tag, srcset, version_token

if TYPE_CHECKING:
    from .origin import Origin

playground = Blueprint(
    "playground",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/playground/static",
)

LISTED = 200  # originals listed at most
EXTENSIONS = (
    *(".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"),
    *(".heic", ".heif", ".jxl"),  # phones' and cameras' formats, served as JPEG or PNG
    ".svg",  # drawn at the size asked for, served as PNG
)
DEFAULT_WIDTHS = "320,640,960,1280"


@playground.get("/")
def page() -> str:
    origin: Origin = current_app.extensions["proxy"]
    secret = _secret(origin)
    originals = [
        {"id": image_id, "thumb": image_url(image_id, w=96, h=96, fit="cover", fmt="webp", secret=secret)}
        for image_id in _originals(origin)
    ]
    return render_template(
        "playground.html",
        originals=originals,
        fits=FITS,
        gravities=GRAVITIES,
        mark_places=MARK_PLACES,
        formats=list(REQUESTABLE),
        presets=list(origin.settings.presets),
        widths=DEFAULT_WIDTHS,
        signed=bool(secret),
        unsigned=bool(origin.settings.secret) and not secret,
    )


@playground.get("/playground/url")
def url() -> Response:
    """The canonical (and signed) URL for ``id`` and the query's image parameters, markup for
    ``widths``, and the original's size; 400 naming the parameter when one is wrong."""
    origin: Origin = current_app.extensions["proxy"]
    if origin.settings.secret and not origin.settings.playground_sign:
        raise BadSignature("the playground signs URLs only with PROXY_PLAYGROUND_SIGN=1")
    args = request.args
    image_id = args.get("id", "")
    check_id(image_id)
    params = {name: value for name, value in args.items() if name in KNOWN and name != "sig" and value != ""}
    parse_params(MultiDict(params), origin.settings)  # the image endpoint's own validation
    try:
        widths = sorted({int(w) for w in args.get("widths", DEFAULT_WIDTHS).split(",") if w.strip()})
    except ValueError:
        raise InvalidParameter("widths", "expected widths in pixels, separated by commas") from None
    if not widths or not all(1 <= w <= origin.settings.max_dimension for w in widths):
        raise InvalidParameter("widths", f"expected widths within 1..{origin.settings.max_dimension}")
    sizes = args.get("sizes") or "100vw"
    secret = _secret(origin)
    source = origin.store.resolve(image_id)
    # Versioned: a replaced original gets new URLs, which no browser or front holds yet.
    params["v"] = version_token(source.version)
    shared: dict[str, Any] = {k: v for k, v in params.items() if k not in ("w", "h", "dpr")}
    ratio = int(params["h"]) / int(params["w"]) if "w" in params and "h" in params else None
    if "h" in params and ratio is None:
        shared["h"] = params["h"]  # a fixed height, whatever the width
    with origin.store.local(source) as path:
        info = probe(path)
    return jsonify(
        {
            "url": image_url(image_id, secret=secret, **params),
            "original_url": image_url(image_id, w=480, v=params["v"], secret=secret),
            "srcset": srcset(image_id, widths, ratio=ratio, secret=secret, **shared),
            "img": img_tag(image_id, widths, sizes=sizes, alt="", ratio=ratio, secret=secret, **shared),
            "picture": picture_tag(
                image_id,
                widths,
                sizes=sizes,
                alt="",
                ratio=ratio,
                secret=secret,
                **{k: v for k, v in shared.items() if k != "fmt"},
            ),
            "original": {
                "format": info.format,
                "width": info.width,
                "height": info.height,
                "bytes": info.bytes,
            },
        }
    )


def _secret(origin: Origin) -> str | None:
    """The key the playground signs with: only when the operator let it (PROXY_PLAYGROUND_SIGN),
    since it signs any parameters for anyone who can open the page."""
    return origin.settings.secret if origin.settings.playground_sign else None


def _originals(origin: Origin) -> list[str]:
    """Image files under the file mounts, by id, the first LISTED found; none for remote ones."""
    found: list[str] = []
    for mount in origin.settings.mounts:
        if mount.scheme != "file":
            continue
        for root, directories, files in os.walk(mount.location):
            directories[:] = sorted(d for d in directories if not d.startswith("."))
            for name in sorted(files):
                if name.lower().endswith(EXTENSIONS) and not name.startswith("."):
                    relative = os.path.relpath(os.path.join(root, name), mount.location)
                    found.append(mount.prefix + relative.replace(os.sep, "/"))
                    if len(found) >= LISTED:
                        return found
    return found

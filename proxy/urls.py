"""Canonical and signed image URLs, and ``srcset`` markup, for the sites that link to the origin.

    from proxy.urls import image_url, srcset, img_tag
    image_url("products/42.jpg", w=400, fmt="webp")         # /image/products/42.jpg?w=400&fmt=webp
    image_url("products/42.jpg", w=400, secret=SECRET)      # ...?w=400&sig=...
    image_url("products/42.jpg", w=400, v=version_token(row.updated_at))  # ...?w=400&v=3f2a9c01
    info_url("products/42.jpg", secret=SECRET)              # /info/products/42.jpg?sig=...: its JSON
    srcset("products/42.jpg", [320, 640, 1280], fmt="auto", base="https://img.example.com")
    img_tag("products/42.jpg", [320, 640, 1280], sizes="(min-width: 800px) 50vw, 100vw", alt="A chair")

``v`` versions a URL: the origin accepts and ignores it, but every browser and CDN cache holds
a URL of another ``v`` as another object, so a replaced original linked with a new ``v`` is seen
at once everywhere, while a purge reaches only the caches it is sent to (docs/caching.md, purging).

Parameters go out in one fixed order, so that equal requests are equal URLs (one entry in every
browser and CDN cache), and a signature is computed over exactly that string, as the origin
checks it (signing.py). The playground page builds its URLs with this module, through one JSON
endpoint, so the secret never reaches a browser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from html import escape
from urllib.parse import quote

from .params import KNOWN
from .signing import sign

ORDER = tuple(name for name in KNOWN if name != "sig")  # the parameters, in the order URLs name them
_SAFE = ",:"  # kept as they are in values (fp=0.3,0.7, rect=0,0,10,10)


def version_token(version: object) -> str:
    """A short ``v`` for anything that changes when the original does: the origin's own version
    of it (size and mtime, an upstream ETag), a database's updated_at, a content hash."""
    return hashlib.sha256(str(version).encode()).hexdigest()[:8]


def image_url(image_id: str, *, base: str = "", secret: str | None = None, **params: object) -> str:
    """``/image/<id>?<params>`` in canonical order, signed with ``secret`` when given.

    ``None`` values are left out; an unknown parameter name is a ``TypeError``, as a misspelt
    keyword argument would be.
    """
    unknown = sorted(set(params) - set(ORDER))
    if unknown:
        raise TypeError(f"unknown image parameter {unknown[0]!r}; known: {', '.join(ORDER)}")
    query = "&".join(
        f"{name}={quote(str(params[name]), safe=_SAFE)}" for name in ORDER if params.get(name) is not None
    )
    url = "/image/" + quote(image_id, safe="/") + (f"?{query}" if query else "")
    return base.rstrip("/") + (sign(secret, url) if secret else url)


def info_url(image_id: str, *, base: str = "", secret: str | None = None, v: str | None = None) -> str:
    """``/info/<id>``, the original's JSON document (docs/url.md), signed with ``secret`` when
    given; ``v`` as for images, the one parameter /info takes."""
    url = "/info/" + quote(image_id, safe="/") + (f"?v={quote(v, safe='')}" if v is not None else "")
    return base.rstrip("/") + (sign(secret, url) if secret else url)


def srcset(
    image_id: str,
    widths: Iterable[int],
    *,
    ratio: float | None = None,
    base: str = "",
    secret: str | None = None,
    **params: object,
) -> str:
    """``url 320w, url 640w, ...``: one candidate per width, the other parameters shared; with
    ``ratio`` (height / width) each candidate also gets the matching ``h``, so a cover crop keeps
    its shape at every width."""
    return ", ".join(
        f"{image_url(image_id, base=base, secret=secret, **_sized(width, ratio), **params)} {width}w"
        for width in widths
    )


def _sized(width: int, ratio: float | None) -> dict[str, int]:
    return {"w": width} if ratio is None else {"w": width, "h": max(1, round(width * ratio))}


def img_tag(
    image_id: str,
    widths: Iterable[int],
    *,
    sizes: str,
    alt: str,
    ratio: float | None = None,
    base: str = "",
    secret: str | None = None,
    **params: object,
) -> str:
    """An ``<img>`` with ``srcset`` and ``sizes``; its ``src`` (for browsers without srcset) is
    the middle width. With ``fmt="auto"`` one tag serves AVIF, WebP or JPEG by ``Accept``."""
    widths = sorted(widths)
    middle = _sized(widths[len(widths) // 2], ratio)
    src = image_url(image_id, base=base, secret=secret, **middle, **params)
    candidates = srcset(image_id, widths, ratio=ratio, base=base, secret=secret, **params)
    return (
        f'<img src="{escape(src)}" srcset="{escape(candidates)}" sizes="{escape(sizes)}" '
        f'alt="{escape(alt)}" loading="lazy" decoding="async">'
    )


def picture_tag(
    image_id: str,
    widths: Iterable[int],
    *,
    sizes: str,
    alt: str,
    formats: Iterable[str] = ("avif", "webp"),
    fallback: str = "jpeg",
    ratio: float | None = None,
    base: str = "",
    secret: str | None = None,
    **params: object,
) -> str:
    """A ``<picture>`` with a ``<source>`` per format and an ``<img>`` in ``fallback``: for a
    CDN that cannot vary on Accept, where ``fmt=auto`` is not an option."""
    widths = sorted(widths)
    sources = []
    for fmt in formats:
        candidates = srcset(image_id, widths, ratio=ratio, base=base, secret=secret, fmt=fmt, **params)
        sources.append(f'<source type="image/{fmt}" srcset="{escape(candidates)}" sizes="{escape(sizes)}">')
    img = img_tag(
        image_id, widths, sizes=sizes, alt=alt, ratio=ratio, base=base, secret=secret, fmt=fallback, **params
    )
    return f"<picture>{''.join(sources)}{img}</picture>"

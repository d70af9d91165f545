"""Arbitrary URLs as originals, for ``/url/<base64url of the URL>``: off unless hosts are allowed.

The URL is carried in the path as unpadded base64url, so it survives every proxy and CDN
unchanged and the usual signing covers it. Its id (for keys, copies and ETags) is
``url:`` + the URL, which no file id can be, since file ids never contain ``//``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from urllib3.util import parse_url

from ..errors import BlockedAddress, InvalidParameter
from .base import MAX_ID_LENGTH, Source
from .remote import RemoteStore
from .web import Hosts, WebUpstream

if TYPE_CHECKING:
    from ..cache import VariantCache
    from ..settings import Settings

PREFIX = "url:"


class UrlStore:
    """Resolves ``url:<URL>`` ids; every hop of every fetch is to an allowed host and a public address."""

    def __init__(self, copies: VariantCache, settings: Settings) -> None:
        self._hosts = Hosts(settings.url_hosts)
        upstream = WebUpstream(None, settings.fetch_timeout, settings.allow_private_addresses, self._hosts)
        self._remote = RemoteStore(upstream, copies, settings)

    def resolve(self, image_id: str) -> Source:
        url = image_id.removeprefix(PREFIX)
        host = parse_url(url).host or ""
        if not self._hosts.allow(host):
            raise BlockedAddress(f"host {host!r} is not in PROXY_URL_HOSTS")
        return self._remote.resolve(image_id, url)

    def forget(self, image_id: str) -> int:
        return self._remote.forget(image_id) if image_id.startswith(PREFIX) else 0

    @contextmanager
    def local(self, source: Source) -> Iterator[str]:
        with self._remote.local(source, source.id.removeprefix(PREFIX)) as path:
            yield path


def url_id(encoded: str) -> str:
    """``/url/<encoded>`` -> ``url:<URL>``, or a 400 that says what is wrong with it."""
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        raise InvalidParameter("url", "expected an http(s) URL in unpadded base64url") from None
    try:
        parsed = parse_url(url)
    except ValueError:
        parsed = None
    if (
        parsed is None
        or parsed.scheme not in ("http", "https")
        or not parsed.host
        or len(url) > MAX_ID_LENGTH
    ):
        raise InvalidParameter("url", "expected an absolute http(s) URL of at most 1024 characters")
    if any(c in url for c in "\0\r\n\\"):
        raise InvalidParameter("url", "control characters and backslashes are not allowed")
    return PREFIX + url

"""Originals on web servers, through urllib3: a mount (``http(s)://host/base/``) or any URL (/url/).

For a mount, the id's remainder is the URL path under the base, each component
percent-encoded, and the configured host is the operator's choice and trusted, wherever it
is. Redirects are followed (at most ``MAX_REDIRECTS``); every hop to any other host, and
every hop of an arbitrary URL, must be to an allowed host (``Hosts``), goes through the
SSRF guard and connects to the address it checked.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote, urljoin

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError
from urllib3.util import parse_url

from ..errors import BlockedAddress, SourceTooLarge
from .guard import checked_address
from .remote import Fetched, Missing, UpstreamError

MAX_REDIRECTS = 3
CHUNK = 1 << 16
REDIRECTS = (301, 302, 303, 307, 308)


class Hosts:
    """Host names allowed for arbitrary URLs: ``example.com``, ``*.example.com`` (subdomains), ``*``."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self._any = "*" in patterns
        self._exact = {p.lower() for p in patterns if not p.startswith("*")}
        self._suffixes = tuple(p[1:].lower() for p in patterns if p.startswith("*."))

    def allow(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return self._any or host in self._exact or host.endswith(self._suffixes)


class WebUpstream:
    def __init__(
        self, base: str | None, timeout: float, allow_private: bool, hosts: Hosts | None = None
    ) -> None:
        """``base``: a mount's base URL, whose host is trusted; None: keys are whole URLs of ``hosts``."""
        self.name = base or "url"
        self._base = base
        self._origin = _origin(base) if base else None
        self._hosts = hosts
        self._timeout = timeout
        self._allow_private = allow_private
        self._pool: urllib3.PoolManager | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def fetch(
        self, key: str, etag: str | None, modified: datetime | None, limit: int, deadline: float
    ) -> Fetched | None:
        url = self._base + quote(key, safe="/") if self._base else key
        headers = {}
        if etag is not None:
            headers["If-None-Match"] = f'"{etag}"'
        elif modified is not None:  # upstream gave no ETag: its own Last-Modified, sent back
            headers["If-Modified-Since"] = format_datetime(modified, usegmt=True)
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response = self._get(url, headers, deadline)
                if response.status not in REDIRECTS:
                    return _answer(response, limit, deadline)
                location = response.headers.get("Location")
                response.close()  # its body is not wanted, and may be endless
                if not location:
                    raise UpstreamError(f"{url}: redirect without a Location")
                url = urljoin(url, location)
            raise UpstreamError(f"{self.name}{key}: more than {MAX_REDIRECTS} redirects")
        except NewConnectionError as error:  # refused: a failure, though urllib3 files it under timeouts
            raise UpstreamError(f"{url}: {error}") from None
        except TimeoutError as error:
            raise UpstreamError(f"{url}: {error}", timeout=True) from None
        except HTTPError as error:  # reset, malformed, a body shorter than its Content-Length
            raise UpstreamError(f"{url}: {error}") from None

    def _get(self, url: str, headers: dict[str, str], deadline: float) -> urllib3.BaseHTTPResponse:
        remaining = max(0.001, deadline - time.monotonic())
        timeout = urllib3.Timeout(connect=remaining, read=remaining)
        parsed = parse_url(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UpstreamError(f"{url}: not an http(s) URL")
        if _origin(url) == self._origin:  # the configured server: trusted
            return self._pooled().request(
                "GET",
                url,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=timeout,
                preload_content=False,
            )
        if self._hosts is not None and not self._hosts.allow(parsed.host):
            raise BlockedAddress(f"host {parsed.host!r} is not in PROXY_URL_HOSTS")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address = checked_address(parsed.host, port, self._allow_private)
        pool: urllib3.HTTPConnectionPool
        if parsed.scheme == "https":  # to the checked address, with the host's name for TLS
            pool = urllib3.HTTPSConnectionPool(
                address, port, server_hostname=parsed.host, assert_hostname=parsed.host, maxsize=1
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, port, maxsize=1)
        host = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
        return pool.urlopen(
            "GET",
            parsed.request_uri,
            headers={**headers, "Host": host},
            redirect=False,
            retries=False,
            timeout=timeout,
            preload_content=False,
            assert_same_host=False,
        )

    def _pooled(self) -> urllib3.PoolManager:
        if self._pid != os.getpid():  # never a pool inherited across gunicorn's fork
            with self._lock:
                if self._pid != os.getpid():
                    self._pool = urllib3.PoolManager(maxsize=8)
                    self._pid = os.getpid()
        assert self._pool is not None
        return self._pool


def _answer(response: urllib3.BaseHTTPResponse, limit: int, deadline: float) -> Fetched | None:
    complete = False  # only a connection whose answer was read whole goes back to the pool
    try:
        if response.status == 304:
            complete = True
            return None
        if response.status in (403, 404, 410):
            raise Missing()
        if response.status != 200:
            raise UpstreamError(f"upstream answered {response.status}")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise SourceTooLarge(f"original is over the {limit}-byte limit")
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(CHUNK):  # what has arrived: a trickle cannot hold it past the deadline
            size += len(chunk)
            if size > limit:  # however long the body claims to be
                raise SourceTooLarge(f"original is over the {limit}-byte limit")
            if time.monotonic() > deadline:
                raise UpstreamError("download took too long", timeout=True)
            chunks.append(chunk)
        complete = True
        etag = response.headers.get("ETag", "").removeprefix("W/").strip('"') or None
        return Fetched(b"".join(chunks), etag, _date(response.headers.get("Last-Modified")))
    finally:
        if complete:
            response.release_conn()
        else:
            response.close()


def _date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _origin(url: str) -> tuple[str | None, str | None, int | None]:
    parsed = parse_url(url)
    return parsed.scheme, (parsed.host or "").lower(), parsed.port

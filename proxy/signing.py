"""Signed URLs: HMAC-SHA256 over the path and query exactly as the client sent them.

    sig = base64url_nopad(HMAC-SHA256(secret, path + "?" + query_without_sig))

``query_without_sig`` keeps the other parameters in the order sent, percent-encoding
untouched; with nothing left, the path alone is signed. Verification runs before
anything else, so an unsigned request learns nothing (not even 404 from 400), and
compares in constant time against the current and the previous secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from .errors import BadSignature

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment


def signature(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(secret: str, url: str) -> str:
    """``/image/a.jpg?w=300`` -> ``/image/a.jpg?w=300&sig=...`` (any old ``sig`` dropped)."""
    path, _, query = url.partition("?")
    message, rest = _message(path, query)
    return f"{path}?{rest + '&' if rest else ''}sig={signature(secret, message)}"


def verify(environ: WSGIEnvironment, secrets: Iterable[str]) -> None:
    """Raise ``BadSignature`` unless the request line carries a valid ``sig`` for some secret."""
    path, query = _request_target(environ)
    sigs = [item[4:] for item in query.split("&") if item.startswith("sig=")]
    message, _ = _message(path, query)
    given = sigs[0].encode() if len(sigs) == 1 else b""
    valid = False
    for secret in secrets:  # every secret is tried, so timing does not reveal which one matched
        valid |= hmac.compare_digest(signature(secret, message).encode(), given)
    if not valid:
        raise BadSignature()


def _message(path: str, query: str) -> tuple[str, str]:
    rest = "&".join(item for item in query.split("&") if item and item.split("=", 1)[0] != "sig")
    return (f"{path}?{rest}" if rest else path), rest


def _request_target(environ: WSGIEnvironment) -> tuple[str, str]:
    """Path and query as sent: gunicorn keeps the request line in RAW_URI, werkzeug in REQUEST_URI."""
    raw = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
    if raw.startswith("/"):
        path, _, query = raw.partition("?")
        return path, query
    if raw:  # absolute form, "GET http://host/path?q HTTP/1.1": sign what follows the authority
        parts = urlsplit(raw)
        return parts.path, parts.query
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/:@!$&'()*+,;=-._~")
    return path, environ.get("QUERY_STRING", "")

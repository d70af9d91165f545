"""Image ids -> sources: where an original is, and which version of it we see.

Resolving reads metadata only (a ``stat``, or a remote original's remembered version),
never the bytes: the version is enough to build the cache key and answer a conditional
request. The bytes are reached only on a miss, through ``SourceStore.local``, which gives
the pipeline a local file: a remote original becomes a local copy before the pipeline sees
it, so neither the pipeline nor the variant cache knows about S3 or HTTP.

Originals are mounted by id prefix (``PROXY_SOURCE``), the longest prefix winning:

    base.py     Source, the store and backend interfaces, id rules: what the modules share
    files.py    file://  a directory (FileStore)
    remote.py   what every remote mount shares: local copies, TTL, one fetch, stale-if-error
    s3.py       s3://    an S3-compatible bucket, through boto3
    web.py      http(s)://  a web server, redirects checked by guard.py
    urls.py     /url/<base64url>: any URL of an allowed host, every hop checked by guard.py
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..cache import VariantCache
from ..errors import NotFound
from .base import COPIES, MAX_ID_LENGTH, Backend, Source, SourceStore, check_id
from .files import FileStore
from .remote import RemoteStore, Upstream

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "COPIES",
    "MAX_ID_LENGTH",
    "Backend",
    "MountedStore",
    "Source",
    "SourceStore",
    "check_id",
    "open_copies",
    "open_store",
]


class MountedStore:
    """Ids dispatched to backends by prefix, longest first; an id never leaves its mount."""

    def __init__(self, mounts: list[tuple[str, Backend]]) -> None:
        self._mounts = sorted(mounts, key=lambda mount: len(mount[0]), reverse=True)

    def resolve(self, image_id: str) -> Source:
        check_id(image_id)
        prefix, backend = self._mount(image_id)
        return backend.resolve(image_id, image_id[len(prefix) :])

    def forget(self, image_id: str) -> int:
        try:
            return self._mount(image_id)[1].forget(image_id)
        except NotFound:
            return 0

    @contextmanager
    def local(self, source: Source) -> Iterator[str]:
        prefix, backend = self._mount(source.id)
        with backend.local(source, source.id[len(prefix) :]) as path:
            yield path

    def _mount(self, image_id: str) -> tuple[str, Backend]:
        for prefix, backend in self._mounts:
            if image_id.startswith(prefix) and len(image_id) > len(prefix):
                return prefix, backend
        raise NotFound()


def open_copies(settings: Settings) -> VariantCache | None:
    """The cache of remote originals' local copies, under the cache directory; None if none can be."""
    if all(mount.scheme == "file" for mount in settings.mounts) and not settings.url_hosts:
        return None
    return VariantCache(settings.cache_dir / COPIES, settings.source_cache_size, files_only=True)


def open_store(settings: Settings, copies: VariantCache | None) -> MountedStore:
    """The store for ``settings.mounts``; remote mounts keep their local copies in ``copies``."""
    backends: list[tuple[str, Backend]] = []
    for mount in settings.mounts:
        if mount.scheme == "file":
            backends.append((mount.prefix, FileStore(mount.location)))
            continue
        if copies is None:
            raise ValueError("remote mounts need a cache for their local copies")
        upstream = _upstream(mount.scheme, mount.location, settings)
        backends.append((mount.prefix, RemoteStore(upstream, copies, settings)))
    return MountedStore(backends)


def _upstream(scheme: str, location: str, settings: Settings) -> Upstream:
    # Imported for the mounts that need them: boto3 takes a while to load.
    if scheme == "s3":
        from .s3 import S3Upstream

        return S3Upstream(location, settings.fetch_timeout)
    from .web import WebUpstream

    return WebUpstream(location, settings.fetch_timeout, settings.allow_private_addresses)

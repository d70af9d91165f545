"""What every source module shares: the Source value, the store and backend interfaces, id rules.

The package's modules import these from here, never from the package itself (``proxy.sources``,
which imports them to mount them), so that no module of the package needs its face to load.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..errors import NotFound

MAX_ID_LENGTH = 1024
COPIES = "sources"  # the copies' directory, under the cache directory


@dataclass(frozen=True)
class Source:
    id: str
    version: str  # changes whenever the bytes may have
    last_modified: datetime
    path: str | None = None  # a local file holding the original, for file sources


class SourceStore(Protocol):
    def resolve(self, image_id: str) -> Source:
        """The source for ``image_id``, or ``NotFound``; metadata only."""
        ...

    def forget(self, image_id: str) -> int:
        """Drop what is remembered of ``image_id`` (purge.py); entries removed, 0 if not ours."""
        ...

    def local(self, source: Source) -> AbstractContextManager[str]:
        """A local file with the source's bytes, readable until the block ends."""
        ...


class Backend(Protocol):
    """One mount's store: ``key`` is the id with the mount's prefix removed."""

    def resolve(self, image_id: str, key: str) -> Source: ...

    def local(self, source: Source, key: str) -> AbstractContextManager[str]: ...

    def forget(self, image_id: str) -> int: ...


def check_id(image_id: str) -> list[str]:
    """The id's components, or ``NotFound`` for an id no store may ever look up.

    Traversal, absolute paths, dotfiles, backslashes and NUL look like any unknown id.
    """
    parts = image_id.split("/")
    if (
        len(image_id) > MAX_ID_LENGTH
        or "\0" in image_id
        or "\\" in image_id
        or any(not part or part[0] == "." for part in parts)
    ):
        raise NotFound()
    return parts

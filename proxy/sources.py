"""Image ids -> sources: where the original is and which version of it we see.

Resolving reads metadata only (one ``stat``), never the bytes: the version is
enough to build the cache key and answer a conditional request. ``SourceStore``
is a protocol so HTTP or S3 backends can slot in beside ``FileStore``; those
will fetch to a local file, because OpenCV decodes best from a path.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from .errors import NotFound

MAX_ID_LENGTH = 1024


@dataclass(frozen=True)
class Source:
    id: str
    path: str  # a local file OpenCV can read
    version: str  # changes whenever the bytes may have
    last_modified: datetime


class SourceStore(Protocol):
    def resolve(self, image_id: str) -> Source:
        """The source for ``image_id``, or ``NotFound``."""
        ...


class FileStore:
    """Originals under one directory. Ids are relative paths; nothing outside is reachable."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._root = str(self.root)

    def resolve(self, image_id: str) -> Source:
        parts = image_id.split("/")
        if (
            len(image_id) > MAX_ID_LENGTH
            or "\0" in image_id
            or "\\" in image_id
            or any(not part or part[0] == "." for part in parts)
        ):
            raise NotFound()  # traversal, absolute paths and dotfiles look like any unknown id
        try:
            path, info = self._walk(parts)
        except (OSError, ValueError):  # missing, unreadable, a symlink loop
            raise NotFound() from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound()  # a directory, a device
        return Source(
            id=image_id,
            path=path,
            # The inode catches a replacement that kept size and mtime (cp -p, rsync -t).
            version=f"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}",
            last_modified=datetime.fromtimestamp(info.st_mtime, UTC),
        )

    def _walk(self, parts: list[str]) -> tuple[str, os.stat_result]:
        """The id's path and stat, never through a symlink that leads out of the root.

        This is on every request's path, hits and 304s included: plain directories and files
        cost one ``lstat`` each, the last doubling as the version; only when a symlink is met
        is the whole path resolved and checked against the root.
        """
        path = self._root
        for part in parts:
            path = f"{path}/{part}"
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                real = os.path.realpath(os.path.join(self._root, *parts), strict=True)
                if not real.startswith(self._root + os.sep):
                    raise NotFound()  # a symlink leading out of the root
                return real, os.stat(real)
        return path, info

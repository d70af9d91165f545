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

    def resolve(self, image_id: str) -> Source:
        parts = image_id.split("/")
        if (
            len(image_id) > MAX_ID_LENGTH
            or "\0" in image_id
            or "\\" in image_id
            or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
        ):
            raise NotFound()  # traversal, absolute paths and dotfiles look like any unknown id
        try:
            path = (self.root / image_id).resolve(strict=True)
            info = path.stat()
        except (OSError, ValueError, RuntimeError):  # missing, unreadable, symlink loop
            raise NotFound() from None
        if not path.is_relative_to(self.root) or not stat.S_ISREG(info.st_mode):
            raise NotFound()  # a symlink leading out of the root, or a directory
        if not os.access(path, os.R_OK):
            raise NotFound()
        return Source(
            id=image_id,
            path=str(path),
            # The inode catches a replacement that kept size and mtime (cp -p, rsync -t).
            version=f"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}",
            last_modified=datetime.fromtimestamp(info.st_mtime, UTC),
        )

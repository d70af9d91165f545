"""Originals under a local directory (``file://``). Ids are relative paths; nothing outside is reachable."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..errors import NotFound
from .base import Source, check_id


class FileStore:
    """Originals under one directory, resolved with one ``lstat`` per id component."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._root = str(self.root)

    def resolve(self, image_id: str, key: str | None = None) -> Source:
        # Alone, a FileStore checks the id; behind MountedStore, ``key`` is the rest of an id it checked.
        parts = check_id(image_id) if key is None else key.split("/")
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

    @contextmanager
    def local(self, source: Source, key: str | None = None) -> Iterator[str]:
        assert source.path is not None
        yield source.path

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

    def forget(self, image_id: str) -> int:
        """Nothing to drop: a file's version is read afresh on every request."""
        return 0

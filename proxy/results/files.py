"""The result tier in a directory: ``file:///path/``, a filesystem several instances mount.

An object is one file, ``<path>/<original tag>/<variant hash>``: a line of JSON (its type and
metadata), then its bytes. It is written to a temporary name beside it and renamed, so that a
reader sees a whole object or none; a purge removes the original's directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .base import Stored


class FileResults:
    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.name = f"file://{root}"  # ends with "/", as settings parse it

    def prepare(self) -> None:
        pass

    def read(self, name: str) -> Stored | None:
        try:
            with open(self.root / name, "rb") as file:
                head = json.loads(file.readline())
                data = file.read()
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):  # a garbled head: an object no check can pass
            return Stored(b"", "", {})
        meta = head.get("meta") if isinstance(head, dict) else None
        if not isinstance(meta, dict):
            return Stored(b"", "", {})
        return Stored(data, str(head.get("type", "")), {str(k): str(v) for k, v in meta.items()})

    def write(self, name: str, data: bytes, mime: str, meta: dict[str, str]) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        head = json.dumps({"type": mime, "meta": meta}).encode() + b"\n"
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(head + data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        directory = self.root / prefix.rstrip("/")
        count = (
            sum(1 for entry in directory.iterdir() if not entry.name.startswith("."))
            if directory.is_dir()
            else 0
        )
        shutil.rmtree(directory, ignore_errors=True)
        return count

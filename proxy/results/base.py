"""What the result tier's modules share: an object as read, and the backend interface."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Found(NamedTuple):
    """A variant's bytes and type, as the tier kept them."""

    data: bytes
    mime: str


class Stored(NamedTuple):
    """An object as a backend reads it: its bytes, its type, and its metadata."""

    data: bytes
    mime: str
    meta: dict[str, str]


class Backend(Protocol):
    """Object storage by name (``<original tag>/<variant hash>``, under the backend's own prefix).

    Its calls may raise anything, and may hang: ResultTier bounds them in time."""

    name: str  # for the log: where it is

    def prepare(self) -> None:
        """Make what calls need (a client), once per process; no network."""
        ...

    def read(self, name: str) -> Stored | None:
        """The object, or None when there is none."""
        ...

    def write(self, name: str, data: bytes, mime: str, meta: dict[str, str]) -> None: ...

    def delete(self, name: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose name starts with ``prefix``; how many."""
        ...

"""What the settings modules share: the error, a mount, and ``setting()``.

``setting()`` is a dataclass ``field`` whose metadata holds everything else said about one
variable (its ``Spec``): how its text is parsed, the bound its value must keep, the reference's
section, and its doc. ``Settings.from_env`` and ``validate`` read the parser and the bound from
there, and ``reference.py`` renders the docs from the same place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, field
from typing import Any, NamedTuple

PREFIX = "PROXY_"
MIN_TOKEN = 16  # bytes a secret or token must have: shorter ones can be guessed
Presets = Mapping[str, tuple[tuple[str, str], ...]]  # name -> query parameters, in order
Parser = Callable[[str, str], Any]  # (variable, stripped text) -> value; SettingsError naming it


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names it."""


class Mount(NamedTuple):
    """Ids starting with ``prefix`` are looked up at ``url`` (file://dir, s3://bucket/prefix, http(s)://)."""

    prefix: str
    scheme: str
    location: str  # file: the directory; s3: bucket/key prefix; http(s): the base URL, ending in /


class Bound(NamedTuple):
    """What a value must keep, however it was made (from the environment, or by a test)."""

    problem: Callable[[Any], str | None]  # what is wrong with a value (after "PROXY_X: "), or None
    rule: str  # the same, said once for the reference


class Spec(NamedTuple):
    """One setting, besides its type and default (the field's own)."""

    parse: Parser
    group: str  # its section of the reference (reference.GROUPS)
    doc: str  # for deployers: sentences; markup: `code`, and [links](page.md#anchor) relative to docs/
    bound: Bound | None = None
    empty: bool = False  # an empty value means something (turn off, or refuse to boot), not the default
    default_doc: str | None = None  # the default in words, where its value cannot say it
    example: str | None = None  # what the example file shows, where the default makes no example


def setting(
    default: object = MISSING,
    *,
    parse: Parser,
    group: str,
    doc: str,
    bound: Bound | None = None,
    empty: bool = False,
    default_doc: str | None = None,
    example: str | None = None,
    factory: Callable[[], object] | None = None,
    secret: bool = False,
) -> Any:
    """A ``Settings`` field, with its ``Spec`` in the metadata; ``secret`` keeps it out of ``repr``."""
    metadata = {"spec": Spec(parse, group, " ".join(doc.split()), bound, empty, default_doc, example)}
    if factory is not None:
        return field(default_factory=factory, repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


def spec_of(known: Field[Any]) -> Spec:
    """The ``Spec`` a field was declared with."""
    spec: Spec = known.metadata["spec"]
    return spec


def env_name(known: Field[Any]) -> str:
    """``cache_size`` -> ``PROXY_CACHE_SIZE``."""
    return PREFIX + known.name.upper()


# The bounds, each with the message it has always had.
def at_least(low: int) -> Bound:
    return Bound(
        lambda value: None if value >= low else f"must be at least {low}, got {value}", f"At least {low}."
    )


def within(low: int, high: int) -> Bound:
    return Bound(
        lambda value: None if low <= value <= high else f"must be within {low}..{high}, got {value}",
        f"From {low} to {high}.",
    )


POSITIVE_SECONDS = Bound(
    lambda value: None if value > 0 else "must be a positive number of seconds", "More than 0."
)
SECONDS = Bound(lambda value: None if value >= 0 else f"must be >= 0 seconds, got {value}", "0 or more.")
BYTES = Bound(lambda value: None if value >= 0 else f"must be >= 0, got {value}", "0 or more.")
CACHE_BYTES = Bound(
    lambda value: None if value >= 16 << 20 else f"{value} bytes is below 16 MiB", "At least 16 MiB."
)


def _token_problem(value: str | None) -> str | None:
    if value is None or len(value.strip().encode()) >= MIN_TOKEN:
        return None
    return (
        f"must be at least {MIN_TOKEN} bytes, not blank (got {len(value.strip().encode())}); "
        "make one with: openssl rand -hex 24"
    )


TOKEN = Bound(  # set, but empty or guessable
    _token_problem,
    f"Set: at least {MIN_TOKEN} bytes, not blank (`openssl rand -hex 24` makes one); set but empty "
    "refuses to boot.",
)

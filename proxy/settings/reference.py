"""The configuration reference, rendered from the settings' own fields.

docs/configuration.md and config/proxy.env.example are this module's output, not edited by hand
(``COMMANDS`` writes them; tests/test_settings.py fails when the committed files differ). What is
said about a ``PROXY_*`` variable is its field's doc in model.py. ``GUNICORN_*`` variables are read
by gunicorn.conf.py, not Settings: what is said about them is their row in ``GUNICORN`` below, and
nowhere else.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any, NamedTuple

from .base import env_name, spec_of
from .model import Settings
from .parsers import SIZE_UNITS, parse_size

MARKDOWN, ENV = "docs/configuration.md", "config/proxy.env.example"
COMMANDS = {
    MARKDOWN: f".venv/bin/python -m proxy.settings --markdown > {MARKDOWN}",
    ENV: f".venv/bin/python -m proxy.settings --env > {ENV}",
}
_LINK = re.compile(r"\[([^]]+)\]\(([^)#]+)[^)]*\)")  # [text](page.md#anchor), relative to docs/
_EDIT = "edit the docs in proxy/settings/model.py (GUNICORN_* in proxy/settings/reference.py)"
_ABOUT = """Every variable is optional. Settings are read once at startup: restart to apply. A malformed
value stops the service at boot with a message naming the variable; a `PROXY_*` name that is no
setting is warned about, with the closest one (`PROXY_CACHE_SZE`: did you mean `PROXY_CACHE_SIZE`?)."""
_WIDTH = 100  # of the example file's comments


class Entry(NamedTuple):
    """One variable, as the reference shows it."""

    name: str
    default: str  # as `value`, or in words
    value: str  # on the example file's line
    doc: str  # sentences, as Spec.doc


# Sections, in order: key (a field's group) -> title, and what to say before the table.
GROUPS = {
    "sources": ("Sources", ""),
    "cache": ("Cache", ""),
    "http": ("HTTP caching and answers", ""),
    "output": ("Output formats", ""),
    "limits": (
        "Limits",
        """Checked before any work is done. [SECURITY.md](../SECURITY.md#limits-and-defaults) says what
        each defends against; lower them if your originals are smaller.""",
    ),
    "security": (
        "Security",
        """A public deployment needs a secret, or presets only:
        [what deployers must set](../SECURITY.md#what-deployers-must-set).""",
    ),
    "transforms": (
        "Transforms and overload",
        """At most `PROXY_MAX_TRANSFORMS` transforms run at once on an instance; the other misses wait
        for a slot, in order of arrival, and are refused (503, with `Retry-After`) only when they would
        wait too long ([bursts and overload](deployment.md#bursts-and-overload)). Hits and 304s never
        wait for a slot.""",
    ),
    "gunicorn": (
        "gunicorn",
        """Read by gunicorn.conf.py, which gives each of its settings' reason, not by Settings
        ([how gunicorn is set up](deployment.md#gunicorn)). A bad count ends the boot, as a bad
        `PROXY_*` value does.""",
    ),
}

GUNICORN = (
    Entry(
        "GUNICORN_BIND",
        "`127.0.0.1:8000`",
        "127.0.0.1:8000",
        """Address to listen on (`make serve`'s); a `--bind` on the command line wins over it
        (deployments pass one: a unix socket behind nginx is best).""",
    ),
    Entry("GUNICORN_WORKERS", "two per core", "4", "Worker processes. A positive integer."),
    Entry(
        "GUNICORN_THREADS",
        "`64`",
        "64",
        """Threads per worker: a miss waiting for a transform slot holds one, and threads cost nothing
        until used. Keep it above `PROXY_TRANSFORM_QUEUE` + `PROXY_MAX_TRANSFORMS`, so that a worker
        whose waiting misses reach the cap still has threads for hits. A positive integer.""",
    ),
    Entry(
        "GUNICORN_TIMEOUT",
        "`60`",
        "60",
        """Seconds a worker's main loop (accepting connections, not rendering) may be silent before the
        worker is killed and replaced; a transform itself is bounded by `PROXY_TRANSFORM_DEADLINE`. A
        positive integer.""",
    ),
    Entry(
        "GUNICORN_CONTROL_SOCKET",
        "unset (off)",
        "/run/image-origin/a.ctl",
        """gunicorn's control socket, off by default: its default path is one per user, which every
        instance on a host would take from the one before. Give each instance its own path to turn it
        on.""",
    ),
    Entry(
        "GUNICORN_JSON_ACCESSLOG",
        "`1`",
        "1",
        """One JSON access line per request on stdout (`1`) or none (`0`: nginx logs requests already;
        saves ~3% of a cache hit's cost).""",
    ),
    Entry("GUNICORN_ACCESSLOG", "unset (off)", "-", "gunicorn's own text access log: `-` for stdout."),
    Entry(
        "GUNICORN_LOGLEVEL",
        "`info`",
        "info",
        """Level of gunicorn's own messages, JSON lines on stderr (`debug`, `info`, `warning`, `error`,
        `critical`).""",
    ),
    Entry(
        "GUNICORN_MALLOC_TUNING",
        "`1`",
        "1",
        """`1`: each worker fixes glibc malloc's mmap threshold at 1 MiB and keeps 2 arenas, so that
        freed frames go back to the system (proxy/memory.py); `0` leaves glibc's defaults, for
        comparison (`bench/soak.py --no-tuning`).""",
    ),
)


def literal(known: Field[Any]) -> str | None:
    """A field's default as a deployer writes it; None when it has none to write (unset, or made at
    startup)."""
    value = known.default
    if value is MISSING or value is None or value == ():
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if spec_of(known).parse is parse_size:
        unit = max((u for u in SIZE_UNITS if value % SIZE_UNITS[u] == 0), key=SIZE_UNITS.__getitem__)
        return f"{value // SIZE_UNITS[unit]}{unit.replace('IB', 'iB')}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Path) and not value.is_absolute():
        return f"./{value}"
    return ",".join(value) if isinstance(value, tuple) else str(value)


def sections() -> dict[str, list[Entry]]:
    """Every variable, by section: the settings' fields in their order, then gunicorn's."""
    grouped: dict[str, list[Entry]] = {key: [] for key in GROUPS}
    for known in fields(Settings):
        spec, value = spec_of(known), literal(known)
        doc = f"{spec.doc} {spec.bound.rule}" if spec.bound else spec.doc
        default = spec.default_doc or (f"`{value}`" if value else "unset")
        grouped[spec.group].append(Entry(env_name(known), default, spec.example or value or "", doc))
    grouped["gunicorn"] += GUNICORN
    return grouped


def render_markdown() -> str:
    """docs/configuration.md: one table per section."""
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated by `{COMMANDS[MARKDOWN]}`: {_EDIT}, not this page. -->",
        "",
        _oneline(
            f"Environment variables. {_ABOUT} [{ENV}](../{ENV}) lists them all with their defaults, to copy."
        ),
    ]
    for key, entries in sections().items():
        title, intro = GROUPS[key]
        lines += ["", f"## {title}", ""] + ([_oneline(intro), ""] if intro else [])
        lines += ["| variable | default | meaning |", "|---|---|---|"]
        lines += [f"| `{e.name}` | {_cell(e.default)} | {_cell(e.doc)} |" for e in entries]
    return "\n".join(lines) + "\n"


def render_env() -> str:
    """config/proxy.env.example: every variable, commented out, with its doc above it."""
    lines = _comment(f"Generated by `{COMMANDS[ENV]}`: {_EDIT}, not this file.")
    lines += ["#"] + _comment(
        """Environment for the image origin. Copy to /etc/image-origin/proxy.env (or wherever your
        process manager reads an EnvironmentFile from) and change what you need. The value shown is the
        default, unless a "Default:" line says otherwise. """
        + _ABOUT
    )
    for key, entries in sections().items():
        title, intro = GROUPS[key]
        lines += ["", f"# --- {title} ".ljust(_WIDTH, "-")] + (_comment(intro) if intro else [])
        for entry in entries:
            default = _plain(entry.default)
            noted = entry.value and default != entry.value  # the line shows an example, not the default
            lines += [""] + _comment(entry.doc + (f" Default: {default}." if noted else ""))
            lines.append(f"#{entry.name}={entry.value}")
    return "\n".join(lines) + "\n"


def _oneline(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _oneline(text).replace("|", "\\|")


def _plain(text: str) -> str:
    """Markdown as plain text, for the example file: `code` bare, a link as its text and its file."""
    text = re.sub(r"`([^`]*)`", r"\1", _oneline(text))
    return _LINK.sub(lambda link: _file_link(link[1], link[2]), text)


def _file_link(text: str, target: str) -> str:
    path = os.path.normpath(f"{Path(MARKDOWN).parent}/{target}")
    return path if Path(path).name == text else f"{text} in {path}"


def _comment(text: str) -> list[str]:
    wrapped = textwrap.wrap(_plain(text), _WIDTH - 2, break_long_words=False, break_on_hyphens=False)
    return [f"# {line}" for line in wrapped]

"""Settings: read once from the environment at startup, frozen, validated.

This package is the only reader of ``os.environ``. Everything else receives a ``Settings`` value,
so tests build their own without touching the process environment, and a bad deployment fails at
boot with a message that names the offending variable instead of failing later on some request.

Each setting is described once, on its field in ``model.py``: default, parser, bound and doc. A
package rather than one module because those docs are as long as the code they describe:

    base.py       SettingsError, Mount, and setting(): a field with its parser, bound and doc
    parsers.py    text -> value, one parser per kind of setting
    model.py      Settings: the fields, validate(), from_env()
    environ.py    OpenCV's limits, and PROXY_* names that are no setting
    reference.py  docs/configuration.md and config/proxy.env.example, rendered from the fields
                  (python -m proxy.settings --markdown | --env)
"""

from .base import MIN_TOKEN, PREFIX, Mount, Presets, SettingsError
from .environ import configure_opencv, opencv_limits, unknown_variables
from .model import SAMPLES_DIR, Settings
from .parsers import (
    NEGOTIABLE,
    SCHEMES,
    parse_auto_formats,
    parse_header_names,
    parse_hosts,
    parse_origins,
    parse_presets,
    parse_size,
    parse_source,
)

__all__ = [
    "MIN_TOKEN",
    "NEGOTIABLE",
    "PREFIX",
    "SAMPLES_DIR",
    "SCHEMES",
    "Mount",
    "Presets",
    "Settings",
    "SettingsError",
    "configure_opencv",
    "opencv_limits",
    "parse_auto_formats",
    "parse_header_names",
    "parse_hosts",
    "parse_origins",
    "parse_presets",
    "parse_size",
    "parse_source",
    "unknown_variables",
]

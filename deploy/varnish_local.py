"""Run deploy/varnish.vcl as an unprivileged varnishd under a scratch directory, for tests.

    python deploy/varnish_local.py DIR LISTEN_PORT ORIGIN_HOST:PORT   # prints the varnishd command

The shipped file is used as is, with only its two EDIT lines pointed at the origin. Started by
root (as CI is), varnishd runs as nobody with no jail, owning only DIR; otherwise as the user.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    from .nginx_local import unprivileged
except ImportError:  # run as a script: python deploy/varnish_local.py
    from nginx_local import unprivileged  # type: ignore[no-redef]

DEPLOY = Path(__file__).resolve().parent / "varnish.vcl"


def write_config(directory: Path, port: int, origin: str) -> list[str]:
    """Write DIR/image-origin.vcl; return the command that runs varnishd on it in the foreground."""
    directory.mkdir(parents=True, exist_ok=True)
    host, _, origin_port = origin.rpartition(":")
    vcl = DEPLOY.read_text()
    vcl = re.sub(r'\.host = "[^"]*";', f'.host = "{host}";', vcl, count=1)
    vcl = re.sub(r'\.port = "[^"]*";', f'.port = "{origin_port}";', vcl, count=1)
    (directory / "image-origin.vcl").write_text(vcl)
    command = [
        "varnishd",
        "-F",  # foreground: the test owns the process
        "-j", "none",  # no jail: nothing to drop to when already unprivileged
        "-n", str(directory / "work"),
        "-a", f"127.0.0.1:{port}",
        "-T", "none",  # no management port
        "-f", str(directory / "image-origin.vcl"),
        "-s", "malloc,64m",
        "-p", "vsl_space=1M",
    ]  # fmt: skip
    return unprivileged(directory, command)


if __name__ == "__main__":
    print(" ".join(write_config(Path(sys.argv[1]).resolve(), int(sys.argv[2]), sys.argv[3])))

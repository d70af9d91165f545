"""Run deploy/varnish.vcl as an unprivileged varnishd under a scratch directory, for tests.

    .venv/bin/python deploy/varnish_local.py DIR LISTEN_PORT ORIGIN_HOST:PORT  # prints the command

The shipped file is used as is, with only its two EDIT lines pointed at the origin. Started by
root (as CI is), varnishd runs as nobody with no jail, owning only DIR (which nobody must be able
to reach: see nginx_local.scratch); otherwise as the user.
"""

from __future__ import annotations

import argparse
import re
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Write DIR/image-origin.vcl from deploy/varnish.vcl; print the command."
    )
    parser.add_argument(
        "directory", type=Path, help="a scratch directory for varnishd's files, e.g. under /tmp"
    )
    parser.add_argument("port", type=int, help="the loopback port varnishd listens on")
    parser.add_argument("origin", help="the gunicorn address, host:port")
    args = parser.parse_args()
    print(" ".join(write_config(args.directory.resolve(), args.port, args.origin)))


if __name__ == "__main__":
    main()

"""Run deploy/nginx.conf as an unprivileged nginx under a scratch prefix, for tests and benchmarks.

    .venv/bin/python deploy/nginx_local.py PREFIX LISTEN_PORT ORIGIN_HOST:PORT...  # prints the command

The shipped file is used as is, with only its EDIT lines pointed at the prefix and the given
addresses (and the validity shortened where a test asks); the main configuration around it
keeps every path under the prefix. Started by root (as CI is), nginx runs as nobody, master
and workers alike, owning only the prefix, which must be where nobody can reach it (under /tmp,
see ``scratch``): nothing outside it is touched.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import tempfile
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent / "nginx.conf"
NOBODY = pwd.getpwnam("nobody")


def write_config(
    prefix: Path, port: int, *origins: str, validity: int | None = None, jxl: bool = False
) -> list[str]:
    """Write PREFIX/nginx.conf (including the adapted deploy file); return the command to run it.

    ``validity`` replaces the front's own validity (seconds), for tests that cannot wait 30 s;
    ``jxl`` uncomments the Accept map's JPEG XL line, as the file says to with jxl negotiated.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    conf = DEPLOY.read_text()
    conf = re.sub(r"proxy_cache_path \S+", f"proxy_cache_path {prefix}/cache", conf)
    servers = " ".join(f"server {origin};" for origin in origins)
    conf = re.sub(r"server unix:\S+;", servers, conf)
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{port};")
    if validity is not None:
        conf = re.sub(r"proxy_cache_valid 200 \S+;", f"proxy_cache_valid 200 {validity}s;", conf)
    if jxl:
        conf, lines = re.subn(r'#("~image/jxl)', r"\1", conf)
        assert lines == 1, "the JPEG XL line of the Accept map is gone"
    (prefix / "image-origin.conf").write_text(conf)
    temp = " ".join(
        f"{kind}_temp_path {prefix}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"daemon off; worker_processes auto; pid {prefix}/nginx.pid; error_log {prefix}/error.log;\n"
        + "events { worker_connections 1024; }\n"
        + f"http {{ access_log off; sendfile on; {temp} include {prefix}/image-origin.conf; }}\n"
    )
    return unprivileged(
        prefix, ["nginx", "-e", f"{prefix}/error.log", "-c", f"{prefix}/nginx.conf", "-p", str(prefix)]
    )


def scratch(name: str) -> Path:
    """A new directory for a front, in the system's temporary directory, which everyone may
    traverse: a prefix an unprivileged front can reach without opening anything else."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-"))


def unprivileged(directory: Path, command: list[str]) -> list[str]:
    """``command`` as it must run to own only ``directory``: as is for a user, as nobody for root
    (as CI is), with ``directory`` (and only it) handed to nobody.

    Its parents are never changed: one nobody cannot traverse is an error naming it."""
    if os.geteuid() != 0:
        return command
    for parent in directory.parents:
        if parent.stat().st_mode & 0o001 == 0:
            raise SystemExit(f"{parent} is closed to nobody: choose a prefix under {tempfile.gettempdir()}")
    for path in (directory, *directory.rglob("*")):
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    return ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups", *command]


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Write PREFIX/nginx.conf around deploy/nginx.conf; print the command."
    )
    parser.add_argument("prefix", type=Path, help="a scratch directory for nginx's files, e.g. under /tmp")
    parser.add_argument("port", type=int, help="the loopback port nginx listens on")
    parser.add_argument("origins", nargs="+", metavar="ORIGIN", help="gunicorn addresses, host:port")
    parser.add_argument("--validity", type=int, help="the front's validity in seconds (default: the file's)")
    parser.add_argument("--jxl", action="store_true", help="uncomment the Accept map's JPEG XL line")
    args = parser.parse_args()
    command = write_config(
        args.prefix.resolve(), args.port, *args.origins, validity=args.validity, jxl=args.jxl
    )
    print(" ".join(command))


if __name__ == "__main__":
    main()

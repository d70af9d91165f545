"""Run deploy/nginx.conf as an unprivileged nginx under a scratch prefix, for tests and benchmarks.

    python deploy/nginx_local.py PREFIX LISTEN_PORT ORIGIN_HOST:PORT...   # prints the nginx command

The shipped file is used as is, with only its EDIT lines pointed at the prefix and the given
addresses (and the validity shortened where a test asks); the main configuration around it
keeps every path under the prefix. Started by root (as CI is), nginx runs as nobody, master
and workers alike, owning only the prefix.
"""

from __future__ import annotations

import os
import pwd
import re
import sys
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


def unprivileged(directory: Path, command: list[str]) -> list[str]:
    """``command`` as it must run to own only ``directory``: as is for a user, as nobody for root
    (as CI is), with ``directory`` handed to nobody and its parents made reachable."""
    if os.geteuid() != 0:
        return command
    for path in (directory, *directory.parents):  # nobody must reach the directory...
        if path.stat().st_mode & 0o005 != 0o005:
            path.chmod(path.stat().st_mode | 0o005)
        if path == Path(tempfile.gettempdir()):
            break
    for path in (directory, *directory.rglob("*")):  # ...and own it
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    return ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups", *command]


if __name__ == "__main__":
    print(" ".join(write_config(Path(sys.argv[1]).resolve(), int(sys.argv[2]), *sys.argv[3:])))

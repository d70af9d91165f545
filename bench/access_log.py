"""What the JSON access line costs a cache hit: the origin with it and without it, alternating.

    .venv/bin/python bench/access_log.py [--seconds 6] [--rounds 3]

Two gunicorns as configured (gunicorn.conf.py), on one cache directory: one writes the access
line of every request to stdout, here a file (as a container runtime or journald captures it),
the other has it off (GUNICORN_JSON_ACCESSLOG=0). wrk sends the same cache hit (~50 KB WebP) to
each in turn, 8 connections. Requires wrk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from http_load import HIT, wait_for, wrk  # noqa: E402

from tests.support.servers import free_port, gunicorn_command  # noqa: E402


def start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            gunicorn_command(f"127.0.0.1:{port}"),
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    scratch = Path(tempfile.mkdtemp(prefix="bench-access-"))
    env = {"PROXY_IMAGE_ROOT": str(REPO / "samples"), "PROXY_CACHE_DIR": str(scratch / "cache")}
    servers = {
        "logged": start({**env, "GUNICORN_JSON_ACCESSLOG": "1"}, scratch / "logged.out"),
        "silent": start({**env, "GUNICORN_JSON_ACCESSLOG": "0"}, scratch / "silent.out"),
    }
    try:
        for _, port in servers.values():
            wait_for(port, HIT)
        rates: dict[str, list[float]] = {name: [] for name in servers}
        order = list(servers)
        for _ in range(args.rounds):
            for name in order:
                rates[name].append(wrk(servers[name][1], HIT, args.seconds, 8, {}, None)["rps"])
            order.reverse()
        logged, silent = (statistics.median(rates[name]) for name in ("logged", "silent"))
        lines = (scratch / "logged.out").read_text().count('"logger": "proxy.access"')
        print(
            f"cache hit, median of {args.rounds} x {args.seconds} s: with the access line {logged:.0f} req/s,"
        )
        print(f"without {silent:.0f} req/s: the line costs {1 - logged / silent:.1%} ({lines} lines written)")
    finally:
        for process, _ in servers.values():
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()


if __name__ == "__main__":
    main()

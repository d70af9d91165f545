"""The cache-hit path against bare Flask: the origin as shipped beside Flask apps returning the
same bytes, under the same gunicorn.conf.py, one run, the servers taking turns.

    .venv/bin/python bench/hit_path.py [--seconds 5] [--rounds 3] [--connections 8] [--requests 20000]

Servers, each started here on a free loopback port with gunicorn.conf.py as shipped:

    origin               proxy.app:create_app(), its JSON access line on (to a file, as a
                         container runtime or journald captures stdout)
    bare, same headers   a Flask view returning the hit's bytes from memory with every header the
                         origin sent (ETag, Last-Modified, Cache-Control, the tags, X-Cache, CORS,
                         X-Request-Id...), built per request as any Flask view builds them
    bare, 3 headers      bench/apps.py's bare(): the same bytes with three headers (the baseline
                         of bench/http_load.py)

The load is the same cache hit (~42 KB WebP), from wrk when it is installed (Debian: apt-get
install wrk), else from a keep-alive client in Python (threads, which then measure much of
themselves). Each round runs every scenario once, in an order that alternates; requests/s are
the medians of the rounds. Beside them, for each scenario: the CPU time its server's processes
spent per request (from /proc), which other load on the machine moves far less than it moves
throughput; and the time per request through each app's WSGI callable in this process, no
server, no client, no access line. The target: a hit at 0.85 of bare Flask or better.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from flask import Flask, Response

REPO = Path(__file__).resolve().parent.parent
HIT = "/image/hubble_deep_field.jpg?w=600&fmt=webp"
HOP = {"date", "server", "connection", "keep-alive", "transfer-encoding"}  # gunicorn's own
TICK = os.sysconf("SC_CLK_TCK")


def same_headers() -> Flask:
    """The bare baseline: fixed bytes (BENCH_BYTES) with fixed headers (BENCH_HEADERS, a JSON
    list of pairs), returned by an ordinary Flask view."""
    data = Path(os.environ["BENCH_BYTES"]).read_bytes()
    pairs = [tuple(pair) for pair in json.loads(Path(os.environ["BENCH_HEADERS"]).read_text())]
    app = Flask(__name__)

    @app.get("/image/<path:image_id>")
    def image(image_id: str) -> Response:
        return Response(data, headers=dict(pairs))

    return app


class Run(NamedTuple):
    rate: float  # requests/s
    cpu: float  # server CPU microseconds per request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(app: str, env: dict[str, str], out: Path) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn with gunicorn.conf.py, as a deployment starts it (docs/deployment.md)."""
    port = free_port()
    bind = f"127.0.0.1:{port}"
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", bind, app],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'bench'}", **env},
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    return process, port


def get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    deadline = time.monotonic() + 30
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            connection.close()


def cpu_seconds(pid: int) -> float:
    """User and system time of a process and its descendants: those alive (gunicorn's workers),
    and those it has reaped (workers recycled after max_requests, counted in its children's time)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return 0.0
    own = sum(int(ticks) for ticks in fields[11:15]) / TICK  # utime, stime, cutime, cstime
    return own + sum(cpu_seconds(int(child)) for child in children)


def wrk(port: int, path: str, seconds: float, connections: int, headers: dict[str, str]) -> tuple[float, int]:
    """Requests/s and requests answered."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"port {port}: {errors.group(1)} error answers")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    return rate, int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]


def keep_alive(
    port: int, path: str, seconds: float, connections: int, headers: dict[str, str]
) -> tuple[float, int]:
    """wrk's measure without wrk: one thread per connection, each on one kept-alive connection."""
    counts = [0] * connections
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status not in (200, 304):
                raise RuntimeError(f"port {port}: HTTP {response.status}")
            counts[index] += 1
        connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started), sum(counts)


def _started(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], object]:
    """A WSGI start_response that keeps nothing."""
    return len


def in_process(scratch: Path, body: bytes, etag: str, requests: int) -> dict[str, float]:
    """Microseconds per request through each app's WSGI callable in this process: no server, no
    client, no access line (its logger is off here); what the apps themselves cost."""
    sys.path[:0] = [str(REPO), str(REPO / "bench")]
    os.environ.update(BENCH_BYTES=str(scratch / "hit.webp"), BENCH_HEADERS=str(scratch / "headers.json"))
    from apps import bare

    from proxy import create_app
    from proxy.settings import Settings

    origin = create_app(Settings(image_root=REPO / "samples", cache_dir=scratch / "cache"))
    apps = {
        "hit: origin": (origin, {}),
        "hit: bare Flask, same headers": (same_headers(), {}),
        "hit: bare Flask, 3 headers": (bare(), {}),
        "304: origin": (origin, {"HTTP_IF_NONE_MATCH": etag}),
    }
    path, _, query = HIT.partition("?")

    def once(app: Flask, extra: dict[str, str]) -> bytes:
        environ = {
            **{"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "RAW_URI": HIT},
            **{"SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"},
            **{"wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr},
            **{"HTTP_HOST": "127.0.0.1", "HTTP_ACCEPT": "*/*", **extra},
        }
        answer = app(environ, _started)
        data = b"".join(answer)
        getattr(answer, "close", lambda: None)()
        return data

    assert once(origin, {}) == body
    times: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(5):  # interleaved, the median of five
        for name, (app, extra) in apps.items():
            started = time.perf_counter()
            for _ in range(requests // 5):
                once(app, extra)
            times[name].append((time.perf_counter() - started) / (requests // 5) * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20000, help="in process, per app (0: none)")
    args = parser.parse_args()
    load = wrk if shutil.which("wrk") else keep_alive
    scratch = Path(tempfile.mkdtemp(prefix="bench-hit-path-"))
    env = {"PROXY_IMAGE_ROOT": str(REPO / "samples"), "PROXY_CACHE_DIR": str(scratch / "cache")}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        origin, origin_port = start(
            "proxy.app:create_app()", {**env, "GUNICORN_JSON_ACCESSLOG": "1"}, scratch / "origin.out"
        )
        processes.append(origin)
        get(origin_port, HIT)  # the miss that renders it
        status, headers, body = get(origin_port, HIT)
        assert status == 200 and dict(headers)["X-Cache"] == "HIT", (status, headers)
        (scratch / "hit.webp").write_bytes(body)
        kept = [(name, value) for name, value in headers if name.lower() not in HOP | {"content-length"}]
        (scratch / "headers.json").write_text(json.dumps(kept))
        etag = dict(headers)["ETag"]
        bare_env = {"BENCH_BYTES": str(scratch / "hit.webp"), "BENCH_HEADERS": str(scratch / "headers.json")}
        same, same_port = start("hit_path:same_headers()", bare_env, scratch / "same.out")
        minimal, minimal_port = start("apps:bare()", bare_env, scratch / "minimal.out")
        processes += [same, minimal]
        for port in (same_port, minimal_port):
            assert get(port, HIT)[2] == body
        scenarios = {
            "hit: origin": (origin, origin_port, {}),
            "hit: bare Flask, same headers": (same, same_port, {}),
            "hit: bare Flask, 3 headers": (minimal, minimal_port, {}),
            "304: origin": (origin, origin_port, {"If-None-Match": etag}),
        }
        for _, port, sent in scenarios.values():  # every worker warm: its memory tier, its memos
            load(port, HIT, 1, args.connections, sent)
        runs: dict[str, list[Run]] = {name: [] for name in scenarios}
        order = list(scenarios)
        for _ in range(args.rounds):
            for name in order:
                server, port, sent = scenarios[name]
                before = cpu_seconds(server.pid)
                rate, answered = load(port, HIT, args.seconds, args.connections, sent)
                runs[name].append(Run(rate, (cpu_seconds(server.pid) - before) / answered * 1e6))
            order.reverse()
        lines = (scratch / "origin.out").read_text().count('"logger": "proxy.access"')
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
    try:
        micros = in_process(scratch, body, etag, args.requests) if args.requests else {}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"{load.__name__}, {args.connections} connections, {args.rounds} rounds x {args.seconds:g} s"
        f" per scenario, {os.cpu_count()} CPUs; hit: {len(body)} bytes and {len(kept)} headers"
        f" besides Content-Length; {lines} access lines written by the origin"
    )
    rate = {name: statistics.median(run.rate for run in values) for name, values in runs.items()}
    cpu = {name: statistics.median(run.cpu for run in values) for name, values in runs.items()}
    print(f"{'':30} {'req/s':>7} {'server CPU':>12} {'in process':>11}   req/s of each round")
    for name, values in runs.items():
        micro = f"{micros[name]:8.1f} us" if name in micros else ""
        rounds = ", ".join(f"{run.rate:.0f}" for run in values)
        print(f"{name:30} {rate[name]:7.0f} {cpu[name]:9.0f} us {micro:>11}   {rounds}")
    print(f"{'':30} {'req/s':>7} {'server CPU':>12} {'in process':>11}")
    for name, over in (
        ("hit: origin", "hit: bare Flask, same headers"),
        ("hit: origin", "hit: bare Flask, 3 headers"),
        ("304: origin", "hit: origin"),
    ):
        label = f"{name.partition(':')[0]} / {over.partition(': ')[2] if name != '304: origin' else 'hit'}"
        micro = f"{micros[over] / micros[name]:11.2f}" if micros else ""
        print(f"{label:30} {rate[name] / rate[over]:7.2f} {cpu[over] / cpu[name]:12.2f} {micro}")
    print("(ratios of speed: requests/s, and the inverse of the times per request; target for a hit: 0.85)")


if __name__ == "__main__":
    main()

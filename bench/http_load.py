"""HTTP throughput and latency over loopback, with wrk, everything in one run.

    .venv/bin/python bench/http_load.py [--seconds 8] [--json bench/out/http.json] [--markdown]

Servers, each started here on a free loopback port: with gunicorn.conf.py, the origin, a
bare Flask app returning the same bytes from memory and the naive pipeline (bench/apps.py),
and the origin as configured before gthread workers (sync workers, three per core);
nginx serving the same bytes as a static file, when Debian's nginx is installed; and
thumbor 7 (Pillow-based, from its own virtualenv, --thumbor), one process per core, with
its file result storage, doing the same misses and repeats. Scenarios: a cache hit (~50 KB
WebP), a 304 revalidation, and a miss storm (a new variant of a 24 MP JPEG on every request,
w 350-449 and q 70-99, 4 connections).
Requires wrk (Debian: apt-get install wrk). ``--markdown`` prints docs/performance.md's table at
the end (bench/doc_tables.py prints it again from the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import doc_tables  # noqa: E402
from transform import photographic  # noqa: E402

from deploy import nginx_local  # noqa: E402
from tests.support.servers import free_port, gunicorn_command  # noqa: E402

HIT = "/image/hubble_deep_field.jpg?w=600&fmt=webp"
MISS_LUA = """
local threads = 0
setup = function(thread)
    thread:set("id", threads)
    threads = threads + 1
end
counter = 0
request = function()
    -- two threads, interleaved: every request is a new variant, about 400 px wide
    counter = counter + 1
    local n = counter * 2 + id
    local path = string.gsub(TEMPLATE, "{w}", 350 + n % 100)
    return wrk.format("GET", (string.gsub(path, "{q}", 70 + math.floor(n / 100) % 30)))
end
"""
ORIGIN_MISS = "/image/big.jpg?fmt=jpeg&w={w}&q={q}"
THUMBOR_MISS = "/unsafe/{w}x0/filters:quality({q}):format(jpeg)/big.jpg"
THUMBOR_HIT = "/unsafe/600x0/filters:quality(80):format(webp)/hubble_deep_field.jpg"
THUMBOR_CONF = """
LOADER = "thumbor.loaders.file_loader"
FILE_LOADER_ROOT_PATH = "{images}"
STORAGE = "thumbor.storages.no_storage"
RESULT_STORAGE = "thumbor.result_storages.file_storage"
RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = "{results}"
RESULT_STORAGE_STORES_UNSAFE = True
ALLOW_UNSAFE_URL = True
QUALITY = 80
MAX_AGE = 86400
"""
NGINX_CONF = """
daemon off;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /image/ {{ alias {prefix}/static/; default_type image/webp; try_files /hit.webp =404; }}
    }}
}}
"""


def wait_for(port: int, path: str = "/", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def gunicorn(app: str, env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        gunicorn_command(f"127.0.0.1:{port}", *extra, app=app),
        cwd=REPO,
        # No access log for any of them: the baselines have none (it costs the origin ~11%).
        env={**os.environ, "GUNICORN_JSON_ACCESSLOG": "0", "PYTHONPATH": f"{REPO}:{REPO / 'bench'}", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, port


def wrk(
    port: int, path: str, seconds: int, connections: int, headers: dict[str, str], lua: Path | None
) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if lua is not None:
        command += ["-s", str(lua)]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def percentile(name: str) -> float:
        value, unit = re.search(rf"{name}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": rate,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def nginx_front(prefix: Path, origin_port: int, port: int) -> subprocess.Popen[bytes]:
    """deploy/nginx.conf as shipped, in front of the origin (deploy/nginx_local.py), from
    ``prefix``, a ``nginx_local.scratch()`` directory."""
    command = nginx_local.write_config(prefix, port, f"127.0.0.1:{origin_port}")
    return subprocess.Popen(command, start_new_session=True)


def nginx_static(prefix: Path, port: int, body: Path) -> subprocess.Popen[bytes]:
    """nginx serving ``body`` as a static file, run as the front is (unprivileged, from
    ``prefix``, a ``nginx_local.scratch()`` directory)."""
    (prefix / "static").mkdir()
    shutil.copy(body, prefix / "static" / "hit.webp")
    (prefix / "nginx.conf").write_text(NGINX_CONF.format(prefix=prefix, port=port))
    command = ["nginx", "-e", f"{prefix}/error.log", "-c", f"{prefix}/nginx.conf", "-p", str(prefix)]
    return subprocess.Popen(nginx_local.unprivileged(prefix, command), start_new_session=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--json", type=Path, default=Path("bench/out/http.json"))
    parser.add_argument("--thumbor", help="path of a thumbor 7 executable (make bench installs one)")
    parser.add_argument("--markdown", action="store_true", help="print docs/performance.md's table too")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    scratch = Path(tempfile.mkdtemp(prefix="bench-http-"))  # the origins' only: nginx has its own
    images = scratch / "images"
    shutil.copytree(REPO / "samples", images)
    cv2.imwrite(str(images / "big.jpg"), photographic(6000, 4000), [cv2.IMWRITE_JPEG_QUALITY, 90])
    lua = scratch / "miss.lua"
    lua.write_text(f'TEMPLATE = "{ORIGIN_MISS}"\n' + MISS_LUA)
    env = {"PROXY_IMAGE_ROOT": str(images), "PROXY_CACHE_DIR": str(scratch / "cache")}
    processes = []
    prefixes: list[Path] = []  # the nginx instances', each a directory nobody may reach (scratch())
    results: dict[str, dict[str, float]] = {}
    try:
        origin, origin_port = gunicorn("proxy.app:create_app()", env)
        processes.append(origin)
        wait_for(origin_port, HIT)
        with urllib.request.urlopen(f"http://127.0.0.1:{origin_port}{HIT}") as response:
            body, etag = response.read(), response.headers["ETag"]
        (scratch / "hit.webp").write_bytes(body)
        bare, bare_port = gunicorn("apps:bare()", {**env, "BENCH_BYTES": str(scratch / "hit.webp")})
        naive, naive_port = gunicorn("apps:naive()", env)
        # The configuration before gthread: sync workers, three per core, on its own cache.
        sync_env = {**env, "PROXY_CACHE_DIR": str(scratch / "cache-sync")}
        workers = str(3 * (os.cpu_count() or 1))
        sync, sync_port = gunicorn("proxy.app:create_app()", sync_env, "-k", "sync", "-w", workers)
        processes += [bare, naive, sync]
        wait_for(sync_port, HIT)
        wait_for(bare_port, "/image/x")
        wait_for(naive_port, "/image/big.jpg?w=100")
        nginx_port = front_port = None
        if shutil.which("nginx"):
            front_port, nginx_port = free_port(), free_port()
            prefixes += [nginx_local.scratch("bench-front"), nginx_local.scratch("bench-static")]
            processes.append(nginx_front(prefixes[0], origin_port, front_port))
            processes.append(nginx_static(prefixes[1], nginx_port, scratch / "hit.webp"))
            wait_for(front_port, HIT)
            wait_for(nginx_port, "/image/hit")
        thumbor_port = None
        if args.thumbor:
            thumbor_port = free_port()
            conf = scratch / "thumbor.conf"
            conf.write_text(THUMBOR_CONF.format(images=images, results=scratch / "thumbor-results"))
            thumbor_lua = scratch / "thumbor-miss.lua"
            thumbor_lua.write_text(f'TEMPLATE = "{THUMBOR_MISS}"\n' + MISS_LUA)
            command = [args.thumbor, "-i", "127.0.0.1", "-p", str(thumbor_port), "-c", str(conf)]
            thumbor = subprocess.Popen(
                [*command, "--processes", str(os.cpu_count() or 1), "-l", "error"],
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(thumbor)
            wait_for(thumbor_port, THUMBOR_HIT)
        print(f"hit body: {len(body)} bytes; {args.seconds} s per scenario; {os.cpu_count()} CPUs")
        scenarios = [
            ("hit: origin", origin_port, HIT, 8, {}, None),
            ("hit: bare Flask, same bytes", bare_port, HIT, 8, {}, None),
            ("hit: origin, sync workers", sync_port, HIT, 8, {}, None),
            ("304: origin", origin_port, HIT, 8, {"If-None-Match": etag}, None),
            ("miss storm: origin", origin_port, "/", 4, {}, lua),
            ("miss storm: naive", naive_port, "/", 4, {}, lua),
        ]
        if nginx_port:
            scenarios.insert(2, ("hit: nginx static file", nginx_port, "/image/hit", 8, {}, None))
            scenarios.insert(3, ("hit: through deploy/nginx.conf", front_port, HIT, 8, {}, None))
        if thumbor_port:
            scenarios.insert(3, ("repeat: thumbor (result storage)", thumbor_port, THUMBOR_HIT, 8, {}, None))
            scenarios.append(("miss storm: thumbor", thumbor_port, "/", 4, {}, thumbor_lua))
        print(f"{'scenario':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for name, port, path, connections, headers, script in scenarios:
            result = wrk(port, path, args.seconds, connections, headers, script)
            results[name] = result
            print(
                f"{name:32} {result['rps']:9.0f} {result['p50_ms']:8.2f} {result['p99_ms']:8.2f}"
                f" {result['non_2xx']:8.0f}"
            )
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
        for directory in (scratch, *prefixes):
            shutil.rmtree(directory, ignore_errors=True)
    ratio = {
        "hit / bare Flask": results["hit: origin"]["rps"] / results["hit: bare Flask, same bytes"]["rps"],
        "304 / hit": results["304: origin"]["rps"] / results["hit: origin"]["rps"],
        "hit gthread / sync": results["hit: origin"]["rps"] / results["hit: origin, sync workers"]["rps"],
        "miss / naive": results["miss storm: origin"]["rps"] / results["miss storm: naive"]["rps"],
    }
    if "hit: nginx static file" in results:
        static = results["hit: nginx static file"]["rps"]
        ratio["hit / nginx static"] = results["hit: origin"]["rps"] / static
        ratio["front hit / nginx static"] = results["hit: through deploy/nginx.conf"]["rps"] / static
    if "miss storm: thumbor" in results:
        ratio["miss / thumbor"] = results["miss storm: origin"]["rps"] / results["miss storm: thumbor"]["rps"]
        ratio["hit / thumbor repeat"] = (
            results["hit: origin"]["rps"] / results["repeat: thumbor (result storage)"]["rps"]
        )
    for name, value in ratio.items():
        print(f"{name:32} {value:9.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    data = {"results": results, "ratios": ratio, "hit_bytes": len(body)}
    args.json.write_text(json.dumps(data, indent=2))
    if args.markdown:
        print("\n" + doc_tables.render(data))


if __name__ == "__main__":
    main()

"""gunicorn settings for a CPU-bound image origin. Each line says why; env vars override.

Run from the repository root:
    gunicorn -c gunicorn.conf.py --bind 127.0.0.1:8000 "proxy.app:create_app()"
"""

import logging
import os
import shutil
import sys
import tempfile


def _count(name, default):
    """A positive integer from the environment, or the boot ends with one line saying which."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        sys.exit(f"error: {name}={raw!r}: expected a positive integer")
    return int(raw)


# Default bind for `make serve`; deployments pass --bind (a unix socket behind nginx is best).
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Two worker processes per core, each with threads: a miss waiting for a transform slot (proxy/gate.py)
# holds a thread, not a process, so hits and 304s always find a free thread and never queue behind
# misses. Threads cost nothing until used (the pool grows on demand) and wait without CPU; OpenCV
# releases the GIL while it decodes, resizes and encodes. Keep threads above PROXY_TRANSFORM_QUEUE
# (48) + PROXY_MAX_TRANSFORMS, so that even a worker whose threads all hold misses has some left.
workers = _count("GUNICORN_WORKERS", 2 * (os.cpu_count() or 1))
worker_class = "gthread"
threads = _count("GUNICORN_THREADS", 64)
# A worker whose main loop (accepting, not rendering) is silent this long is stuck and replaced;
# a transform itself is bounded by PROXY_TRANSFORM_DEADLINE.
timeout = _count("GUNICORN_TIMEOUT", 60)
# On SIGTERM, in-flight transforms get this long to finish before workers are killed.
graceful_timeout = 30
# Keep-alive, which gthread workers honour: the front proxy reuses its connections (nginx keeps 16),
# and an idle connection waits in the worker's poller, holding no thread.
keepalive = 2
# Recycle workers now and then: a safety net against growth in native libraries. What keeps a
# worker's memory level is the malloc tuning below (bench/soak.py).
max_requests = 5000
max_requests_jitter = 500
# glibc malloc, set by post_fork in each worker (why: proxy/memory.py; figures: docs/performance.md); a
# variable like MALLOC_ARENA_MAX is read when a process starts, not by workers forked from a master.
# - mmap threshold fixed at 1 MiB: a frame or encoder buffer is mapped for its use and unmapped when
#   freed. glibc's own threshold rises to 32 MiB after the first large free, and every later frame
#   then stays in an arena heap for good: 1.7 GiB per worker after 10 minutes of bench/soak.py.
# - 2 arenas, not 8 per core: each arena keeps its own high-water mark, and the threads that
#   allocate much are the few running a transform (PROXY_MAX_TRANSFORMS on the whole instance).
# GUNICORN_MALLOC_TUNING=0 leaves glibc's defaults, for comparison (bench/soak.py --no-tuning).
malloc_tuning = os.environ.get("GUNICORN_MALLOC_TUNING", "1") != "0"
# Import OpenCV and NumPy once in the master, and fail at boot (not per worker) on bad settings.
preload_app = True
# The app writes one JSON line per request (proxy.access: id, transform, status, cache, ms) to
# stdout, so gunicorn's own text access log is off unless asked for (GUNICORN_ACCESSLOG=-).
# The JSON line costs ~3% of a cache hit's throughput (bench/access_log.py: it is written in
# batches by a thread, see proxy/access.py); behind nginx, whose own log sees every request,
# GUNICORN_JSON_ACCESSLOG=0 turns it off.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
json_access_level = "INFO" if os.environ.get("GUNICORN_JSON_ACCESSLOG", "1") != "0" else "WARNING"
# Our JSON lines never show the caller, thread or process, so logging need not look them up
# (the logging HOWTO's "Optimization" section).
logging._srcfile = None
logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which every
# instance on a host would take from the one before (the consistent-hash setup runs several).
# Off unless GUNICORN_CONTROL_SOCKET names a path for this instance.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# Errors and gunicorn's own messages as JSON lines too, on stderr.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "proxy.access.JsonFormatter"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},  # replaces gunicorn's default root
    "loggers": {
        "proxy.access": {"handlers": ["stdout"], "level": json_access_level, "propagate": False},
        "proxy": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
    },
}

# Prometheus multiprocess mode: each worker writes its samples to files in one directory, fresh for
# every start of the master, and /metrics on any worker adds them up. Must be set before the app
# (and prometheus_client) is imported, which preload_app does right after this file.
_metrics_dir = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="image-origin-metrics-")

# Every PROXY_* value is checked here, before gunicorn configures logging or loads the app, so that
# a bad one ends the boot with one line naming it (and a misspelt name is warned about). After the
# metrics directory is set: importing proxy imports prometheus_client, which reads it once.
from proxy.settings import Settings, SettingsError, unknown_variables  # noqa: E402

for _warning in unknown_variables():
    print(_warning, file=sys.stderr)
try:
    Settings.from_env()
except SettingsError as _error:
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
    sys.exit(f"error: {_error}")


def post_fork(server, worker):  # in the worker, before its threads exist
    if malloc_tuning:
        from proxy.memory import tune_malloc

        if not tune_malloc():
            server.log.warning("malloc is not glibc's: its arena and mmap settings are left as they are")
    from proxy.results import prepare_after_fork

    prepare_after_fork()  # the shared result tier's client, made while the worker boots


def child_exit(server, worker):  # a dead worker's live gauges must stop counting
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # only a directory this file made; an operator's own is theirs to keep
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)

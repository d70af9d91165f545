"""Worker memory under a long mixed load: does each worker's RSS level off, or keep growing?

    .venv/bin/python bench/soak.py [--seconds 600] [--clients 48] [--no-tuning] [--json bench/out/soak.json]

Starts gunicorn as shipped (gunicorn.conf.py: its worker and thread counts) over generated
originals of 0.4 to 24 MP (JPEG, PNG with and without alpha, WebP), and drives it from
``--clients`` threads, each on fresh connections: new variants (log-uniform widths 64-3000,
JPEG, WebP, PNG or AVIF, varied quality), hits on a warm set of 96 variants, and 304s for them.
Every ``--every`` seconds it reads each worker's VmRSS from /proc and prints, every
``--print-every`` seconds, the workers' RSS (min, median, max, sum). The verdict compares the
sum 5 minutes before the end (half the run, if shorter) with the sum at the end, each the median
of the 30 s of samples up to that time, so one in-flight decode does not decide it.

Worker recycling (``max_requests`` in gunicorn.conf.py) is off unless ``--max-requests`` is
given: it would restart a worker every few minutes and hide the growth being measured.
``--no-tuning`` starts the same server with GUNICORN_MALLOC_TUNING=0, the allocator as glibc
sets it up (no ``mallopt`` in the workers: see gunicorn.conf.py), for comparison.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.backpressure import camera_like  # noqa: E402
from tests.support.servers import Server, http_request, start_gunicorn  # noqa: E402

MIB = 1 << 20
WINDOW = 30.0  # seconds of samples whose median stands for "the RSS at" a time
FORMATS = ("jpeg", "webp", "png", "avif")
HOT = 96  # variants in the warm set that hits and 304s ask for


def originals(directory: Path) -> list[str]:
    """Mixed sizes up to 24 MP, every kind the decoder table handles differently."""
    made = []
    for name, (width, height), seed in (
        ("camera24.jpg", (6000, 4000), 1),
        ("camera12.jpg", (4240, 2832), 2),
        ("scan8.png", (3464, 2309), 3),
        ("wide6.webp", (3000, 2000), 4),
        ("cutout4.png", (2400, 1600), 5),
        ("page2.jpg", (1800, 1200), 6),
        ("thumb.jpg", (800, 533), 7),
    ):
        image = camera_like(width, height, seed)
        if name.startswith("cutout"):  # an alpha channel: flattened for JPEG, kept for the others
            alpha = np.zeros((height, width), np.uint8)
            cv2.circle(alpha, (width // 2, height // 2), min(width, height) // 2, 255, -1)
            image = np.dstack((image, alpha))
        flags = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 90], ".webp": [cv2.IMWRITE_WEBP_QUALITY, 90]}
        cv2.imwrite(str(directory / name), image, flags.get(Path(name).suffix, []))
        made.append(name)
    return made


def new_variant(names: list[str], n: int) -> str:
    """The n-th new variant: an original, a width (log-uniform, as pages ask), format, quality."""
    rng = random.Random(n)
    width = round(64 * (3000 / 64) ** rng.random())
    return f"/image/{names[n % len(names)]}?w={width}&fmt={FORMATS[n // 7 % 4]}&q={30 + n // 28 % 66}"


def hot_set(names: list[str]) -> list[str]:
    rng = random.Random(0)
    return [
        f"/image/{rng.choice(names)}?w={rng.randrange(120, 800, 8)}&fmt={rng.choice(('webp', 'jpeg'))}"
        for _ in range(HOT)
    ]


class Load:
    """``clients`` threads asking for new variants (``misses`` of the requests), hits and 304s."""

    def __init__(self, port: int, names: list[str], clients: int, misses: float) -> None:
        self.port, self.names, self.clients, self.misses = port, names, clients, misses
        self.hot = hot_set(names)
        self.etags: dict[str, str] = {}
        self.answers: Counter[str] = Counter()
        self._counter = iter(range(10**9))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def warm(self) -> None:
        for path in self.hot:
            status, headers, _ = http_request(self.port, "GET", path)
            assert status == 200, (path, status)
            self.etags[path] = headers["etag"]

    def start(self) -> None:
        for seed in range(self.clients):
            thread = threading.Thread(target=self._client, args=(seed,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=150)

    def answered(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.answers.items()))

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            draw = rng.random()
            headers = {}
            if draw < self.misses:
                with self._lock:
                    n = next(self._counter)
                path, kind = new_variant(self.names, n), "miss"
            else:
                path = rng.choice(self.hot)
                kind = "hit"
                if draw > (1 + self.misses) / 2:  # half of the rest revalidate
                    headers, kind = {"If-None-Match": self.etags[path]}, "revalidate"
            try:
                status, answer, _ = http_request(self.port, "GET", path, headers)
            except OSError as error:
                with self._lock:
                    self.answers[f"{kind} {type(error).__name__}"] += 1
                continue
            with self._lock:
                self.answers[f"{kind} {status}"] += 1
            if status == 503:  # as a well-behaved client does (tests/support/load.py's storm)
                self._stop.wait(float(answer.get("retry-after", 1)))


@dataclass
class Sample:
    t: float  # seconds into the load
    workers: dict[int, dict[str, int]]  # pid: VmRSS and RssAnon (KiB), Threads, from /proc/<pid>/status

    @property
    def rss(self) -> list[float]:
        """Each worker's RSS in MiB, smallest first."""
        return sorted(m["VmRSS"] / 1024 for m in self.workers.values())

    def row(self) -> dict[str, float]:
        rss = self.rss
        anon = sum(m["RssAnon"] for m in self.workers.values()) / 1024
        return {
            "min": rss[0],
            "median": statistics.median(rss),
            "max": rss[-1],
            "sum": sum(rss),
            "anon": anon,
        }


def sample(server: Server, t: float) -> Sample:
    workers = {}
    for pid in server.workers():
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue  # exited between the listing and the read
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        workers[pid] = {name: int(fields[name].split()[0]) for name in ("VmRSS", "RssAnon", "Threads")}
    return Sample(round(t, 1), workers)


def at(samples: list[Sample], t: float) -> float:
    """The workers' summed RSS (MiB) at ``t``: the median of the samples in the WINDOW up to it."""
    return statistics.median(sum(s.rss) for s in samples if t - WINDOW <= s.t <= t)


def soak(server: Server, load: Load, seconds: float, every: float, print_every: float) -> list[Sample]:
    """Runs the load for ``seconds``, sampling every worker's memory every ``every`` seconds."""
    print(
        f"{'t s':>6} {'min MiB':>8} {'median':>7} {'max':>7} {'sum':>7} {'anon':>7} {'threads':>7}  answers"
    )
    samples: list[Sample] = []
    started = time.monotonic()
    load.start()
    printed = -math.inf
    try:
        while (now := time.monotonic() - started) < seconds:
            samples.append(sample(server, now))
            if now - printed >= print_every:
                printed = now
                row = samples[-1].row()
                threads = sum(m["Threads"] for m in samples[-1].workers.values())
                print(
                    f"{now:6.0f} {row['min']:8.0f} {row['median']:7.0f} {row['max']:7.0f} {row['sum']:7.0f} "
                    f"{row['anon']:7.0f} {threads:7d}  {load.answered()}",
                    flush=True,
                )
            time.sleep(max(0.0, every - (time.monotonic() - started - now)))
    finally:
        load.stop()
    return samples


def verdict(samples: list[Sample]) -> dict[str, float]:
    """Growth of the workers' summed RSS over the last 5 minutes (the last half of a shorter run)."""
    end = samples[-1].t
    mark = max(end - 300, end / 2)
    before, after = at(samples, mark), at(samples, end)
    growth = after - before
    workers = len(samples[-1].workers)
    print(
        f"verdict: workers' RSS sum {before:.0f} MiB at {mark / 60:.1f} min, {after:.0f} MiB at "
        f"{end / 60:.1f} min: {growth:+.0f} MiB ({100 * growth / before:+.1f}%) over the last "
        f"{(end - mark) / 60:.1f} min, {growth / workers:+.0f} MiB per worker"
    )
    return {
        "mark_s": mark,
        "end_s": end,
        "sum_at_mark_mib": before,
        "sum_at_end_mib": after,
        "growth_mib": growth,
        "growth_pct": 100 * growth / before,
        "growth_per_worker_mib": growth / workers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=48)
    parser.add_argument("--misses", type=float, default=0.4, help="share of requests for new variants")
    parser.add_argument("--every", type=float, default=5, help="seconds between RSS samples")
    parser.add_argument("--print-every", type=float, default=30)
    parser.add_argument("--no-tuning", action="store_true", help="glibc malloc as it comes (no mallopt)")
    parser.add_argument("--max-requests", type=int, default=0, help="worker recycling; 0: off")
    parser.add_argument("--gunicorn-arg", action="append", default=[], help="passed on to gunicorn")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    json_path = args.json or Path("bench/out", "soak-untuned.json" if args.no_tuning else "soak.json")

    scratch = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    images = scratch / "images"
    images.mkdir()
    names = originals(images)
    env = {
        "PROXY_IMAGE_ROOT": str(images),
        "PROXY_CACHE_DIR": str(scratch / "cache"),
        "GUNICORN_JSON_ACCESSLOG": "0",
        "GUNICORN_MALLOC_TUNING": "0" if args.no_tuning else "1",
    }
    extra = ("--max-requests", str(args.max_requests), *args.gunicorn_arg)
    server = start_gunicorn(env, workers=None, args=extra)
    try:
        print(
            f"{len(server.workers())} workers, {args.clients} clients, {args.seconds:.0f} s, "
            f"malloc tuning {'off' if args.no_tuning else 'on'}, max_requests {args.max_requests}"
        )
        load = Load(server.port, names, args.clients, args.misses)
        load.warm()
        samples = soak(server, load, args.seconds, args.every, args.print_every)
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    pids = sorted({pid for s in samples for pid in s.workers})
    result = verdict(samples)
    print(f"{len(pids)} worker pids seen; answers {load.answered()}")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "cpus": os.cpu_count(),
        "seconds": args.seconds,
        "clients": args.clients,
        "misses": args.misses,
        "malloc_tuning": not args.no_tuning,
        "max_requests": args.max_requests,
        "answers": load.answered(),
        "worker_pids": pids,
        "verdict": result,
        "samples": [{"t": s.t, **s.row(), "workers": s.workers} for s in samples],
    }
    json_path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

"""Remote originals under upstream faults, against gunicorn as shipped (its workers and threads).

    .venv/bin/python bench/faults.py [--timeout 2] [--seconds 10] [--only hang,s3-down]
                                     [--json bench/out/faults.json]

Six scenarios, one after another, each with its own upstream, cache directory and gunicorn:

    hang      16 originals on an HTTP mount that never sends a status line; 60 clients asking new
              sizes of them for --seconds, while a thread here and another process each ask a
              cache hit of a file mount every 10 ms
    trickle   the same, the upstream sending 1024 bytes a second
    s3-hang   an s3:// mount whose endpoint (AWS_ENDPOINT_URL) accepts and never answers: one attempt
              per original, botocore's retries included
    s3-down   40 originals fetched once from moto's S3 server, which is then stopped; past
              PROXY_SOURCE_TTL=1, 40 clients ask the known ones at new sizes and unknown ones
    evicted   the local copies of known originals purged while the upstream answers 503
    truncated /half/ (an honestly framed half JPEG) and /lying/ (declares more than it sends)

Prints per scenario the statuses, the slowest answer (and the slowest time spent in the app, from
its access log: the rest is queueing before a worker's thread takes the request), the requests
that reached the upstream against their bound and the most for one original, the workers' peak
RSS (sum and largest, from /proc/<pid>/status), the CPU time their threads ran and waited for a
CPU (from /proc/<pid>/task/*/schedstat) and the host's load average: on a shared machine the tail
latencies are partly the host's. Then a verdict per scenario against the documented targets: no
500, no answer slower than PROXY_FETCH_TIMEOUT + 1 s, at most one upstream request per original
per RETRY (5 s) interval begun during the load, and the scenario's own statuses. In hang and
trickle the hits' p99 must be under 100 ms; it is judged on the probe that runs in a process of
its own (tests/support/load.py's HitProbe), as the thread's latencies include this process's own GIL.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import boto3
import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from proxy.cache import VariantCache  # noqa: E402
from proxy.purge import original_tag  # noqa: E402
from proxy.sources import COPIES  # noqa: E402
from proxy.sources.remote import RETRY  # noqa: E402
from tests.support.images import encode, photo  # noqa: E402
from tests.support.load import HitProbe, percentile, timed_get  # noqa: E402
from tests.support.servers import Server, start_gunicorn  # noqa: E402
from tests.support.upstreams import S3Server, web_originals  # noqa: E402

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
SCENARIOS = ("hang", "trickle", "s3-hang", "s3-down", "evicted", "truncated")
SLACK = 1.0  # seconds past PROXY_FETCH_TIMEOUT that any answer may take (the documented bound)
HIT_P99 = 0.100  # seconds: a hit on another mount while an upstream hangs
AT_ONCE = 0.25  # seconds, the median: known copies and remembered failures wait on no upstream
SHORT = 4.0  # seconds of load in the scenarios after the first two: within one RETRY interval
HIT = "/image/local.jpg?w=120"
MIB = 1 << 20

Answer = tuple[str, int, float]  # path, status (0: the connection failed), seconds


@dataclass
class Outcome:
    """What one scenario saw, and what is wrong with it (nothing: ok)."""

    name: str
    statuses: Counter[int] = field(default_factory=Counter)
    slowest: float = 0.0
    upstream: int = 0  # requests that reached the upstream
    most: int = 0  # of them, the most for any one original
    bound: int = 0  # at most this many may
    rss_sum: float = 0.0  # MiB, the peak of the workers' total
    rss_max: float = 0.0  # MiB, the peak of any one worker
    cpu_s: float = 0.0  # seconds the workers' threads ran on a CPU
    runq_s: float = 0.0  # seconds they were runnable but waited for a CPU (the host's other load)
    app_slowest: float = 0.0  # seconds in the app (access log), for the slowest answer of the load
    app_hits: list[float] = field(default_factory=list)  # seconds in the app of each hit, sorted
    load: tuple[float, float] = (0.0, 0.0)  # the host's 1-minute load average, at start and end
    notes: list[str] = field(default_factory=list)  # scenario-specific lines for the report
    problems: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)  # gunicorn's error and critical lines
    attempts_logged: int = 0  # "upstream fetch failed" lines: failed attempts, reached or not
    extra: dict[str, object] = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0, help="PROXY_FETCH_TIMEOUT, seconds")
    parser.add_argument("--seconds", type=float, default=10.0, help="load in hang and trickle")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--json", type=Path, default=Path("bench/out/faults.json"))
    parser.add_argument(
        "--generator",
        choices=("python", "wrk"),
        default="wrk" if shutil.which("wrk") else "python",
        help="what drives hang and trickle's 60 clients: wrk (C, one thread: the least CPU taken from "
        "the workers on a small machine; the default when installed) or this process's threads",
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    jpeg = encode(photo(600, 400), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90)
    local = scratch / "local"
    local.mkdir()
    (local / "local.jpg").write_bytes(jpeg)
    runs: dict[str, Callable[[], Outcome]] = {
        "hang": lambda: web_fault("hang", args, scratch, jpeg),
        "trickle": lambda: web_fault("trickle", args, scratch, jpeg),
        "s3-hang": lambda: s3_hang(args, scratch, jpeg),
        "s3-down": lambda: s3_down(args, scratch, jpeg),
        "evicted": lambda: evicted(args, scratch, jpeg),
        "truncated": lambda: truncated(args, scratch, jpeg),
    }
    outcomes: list[Outcome] = []
    started = time.monotonic()
    try:
        for name in chosen:
            try:
                outcome = runs[name]()
            except Exception as error:  # one broken scenario does not hide the others' results
                outcome = Outcome(name, problems=[f"the scenario itself failed: {error!r}"])
            judge(outcome, args.timeout)
            outcomes.append(outcome)
            print(f"  {name}: done, {time.monotonic() - started:.0f} s in", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(outcomes, args.timeout)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"fetch_timeout_s": args.timeout, "retry_s": RETRY, "scenarios": [_plain(o) for o in outcomes]},
            indent=2,
        )
    )


# --- the scenarios ------------------------------------------------------------------------------


def web_fault(kind: str, args: argparse.Namespace, scratch: Path, jpeg: bytes) -> Outcome:
    """``hang`` or ``trickle``: 16 originals on a misbehaving mount, 60 clients, hits meanwhile."""
    outcome = Outcome(kind)
    originals = 16
    with web_originals() as upstream:
        upstream.trickle = 1024
        for i in range(originals):
            upstream.files[f"p{i}.jpg"] = jpeg
        source = f"{kind}/={upstream.base}{kind}/,={(scratch / 'local').as_uri()}"
        with origin(scratch / kind, args.timeout, {"PROXY_SOURCE": source}, outcome) as server:
            with WorkerWatch(server, outcome):
                for _ in range(2):  # rendered, then a hit (of the memory tier too)
                    assert timed_get(server.port, HIT)[0] == 200
                with HitLoop(server.port, HIT) as hits, HitProbe(server.port, HIT, args.seconds) as probe:
                    answers, seconds = (storm_wrk if args.generator == "wrk" else storm)(
                        server.port,
                        60,
                        args.seconds,
                        lambda n: f"/image/{kind}/p{n % 16}.jpg?w={20 + n // 16}",
                    )
                    probed, probe_answers = probe.result()
            count_upstream(outcome, upstream.gets)
    outcome.bound = originals * intervals(args.seconds)
    outcome.extra["load_s"] = seconds
    tally(outcome, answers, expected={"": {504}})
    threaded = sorted(seconds for _, seconds in hits.answers) or [0.0]
    kinds = {answer for answer, _ in hits.answers} | {f"{status} {cache}" for status, cache in probe_answers}
    probed = probed or [0.0]
    for name, latencies in (("a thread of this bench", threaded), ("another process", probed)):
        outcome.notes.append(f"hits on the file mount, from {name}: {_spread(latencies)}")
    app = outcome.app_hits or [0.0]
    outcome.notes.append(f"hits in the app (access log): {_spread(app)}; answers {sorted(kinds)}")
    p99 = percentile(probed, 0.99)
    outcome.extra.update(
        hit_answers=sorted(kinds),
        hit_thread_p50_s=percentile(threaded, 0.5),
        hit_thread_p99_s=percentile(threaded, 0.99),
        hit_process_p50_s=percentile(probed, 0.5),
        hit_process_p99_s=p99,
        hit_app_p99_s=percentile(app, 0.99),
    )
    if p99 >= HIT_P99:
        outcome.problems.append(
            f"hit p99 {p99 * 1000:.0f} ms is not under {HIT_P99 * 1000:.0f} ms (in the app: "
            f"{percentile(app, 0.99) * 1000:.0f} ms; host load {outcome.load[0]:.0f}->{outcome.load[1]:.0f})"
        )
    if kinds != {"200 HIT"}:
        outcome.problems.append(f"hits answered {sorted(kinds)}, not only 200 HIT")
    outcome.slowest = max(outcome.slowest, threaded[-1], probed[-1])
    return outcome


def s3_hang(args: argparse.Namespace, scratch: Path, jpeg: bytes) -> Outcome:
    """An S3 endpoint that accepts and never answers: one attempt per original, retries included."""
    outcome = Outcome("s3-hang")
    originals = 16
    with web_originals() as upstream:
        upstream.hanging = True
        env = {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": upstream.base.rstrip("/"),
            "PROXY_SOURCE": f"s3/=s3://bucket/,={(scratch / 'local').as_uri()}",
        }
        with origin(scratch / "s3-hang", args.timeout, env, outcome) as server, WorkerWatch(server, outcome):
            # Shorter than one attempt plus RETRY: each original is asked exactly once.
            answers, _ = storm(server.port, 60, SHORT, lambda n: f"/image/s3/p{n % 16}.jpg?w={20 + n // 16}")
            time.sleep(args.timeout + 0.5)  # a retry, had botocore made one, has reached upstream by now
            count_upstream(outcome, upstream.gets)
    outcome.bound = originals
    tally(outcome, answers, expected={"": {504}})
    outcome.notes.append(f"requests that reached the endpoint: {outcome.upstream} for {originals} originals")
    return outcome


def s3_down(args: argparse.Namespace, scratch: Path, jpeg: bytes) -> Outcome:
    """Known originals answered from their copies, unknown ones 502, while S3 is down."""
    outcome = Outcome("s3-down")
    originals, ttl = 40, 1.0
    s3 = S3Server()
    s3.start()
    try:
        client = boto3.session.Session(
            aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
        ).client("s3", endpoint_url=s3.endpoint)
        client.create_bucket(Bucket="faults")
        for i in range(originals):
            client.put_object(Bucket="faults", Key=f"k{i}.jpg", Body=jpeg)
        env = {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": s3.endpoint,
            "PROXY_SOURCE": "s3://faults/",
            "PROXY_SOURCE_TTL": str(ttl),
        }
        with origin(scratch / "s3-down", args.timeout, env, outcome) as server, WorkerWatch(server, outcome):
            again = warm_up(outcome, server.port, [f"/image/k{i}.jpg?w=100" for i in range(originals)])
            count_upstream(outcome, Counter({i: s3.gets("faults", f"k{i}.jpg") for i in range(originals)}))
            s3.stop()
            time.sleep(ttl + 0.2)  # every known version is past its TTL: revalidations start, and fail

            def path(n: int) -> str:  # known ones at sizes not asked before, and unknown ones
                if n % 2 == 0:
                    return f"/image/k{n // 2 % originals}.jpg?w={101 + n // (2 * originals)}"
                return f"/image/u{n // 2 % originals}.jpg?w=100"

            answers, seconds = storm(server.port, 40, SHORT, path)
    finally:
        s3.stop()
    outcome.bound = originals + again  # each fetched once while S3 was up (twice if it failed)
    tally(outcome, answers, expected={"/image/k": {200}, "/image/u": {502}}, fast=AT_ONCE)
    outcome.extra["load_s"] = seconds
    failed = originals * intervals(SHORT)  # attempts at unknown ones: refused, never reaching S3
    outcome.notes.append(f"failed attempts logged (S3 down): {outcome.attempts_logged}, at most {failed}")
    if outcome.attempts_logged > failed:
        outcome.problems.append(f"{outcome.attempts_logged} failed attempts logged, over {failed}")
    return outcome


def evicted(args: argparse.Namespace, scratch: Path, jpeg: bytes) -> Outcome:
    """Known originals whose local copies were evicted, while upstream answers 503: 502, not 500."""
    outcome = Outcome("evicted")
    originals = 16
    cache = scratch / "evicted"
    with web_originals() as upstream:
        for i in range(originals):
            upstream.files[f"p{i}.jpg"] = jpeg
        env = {"PROXY_SOURCE": f"img/={upstream.base}img/"}
        with origin(cache, args.timeout, env, outcome) as server, WorkerWatch(server, outcome):
            warm_up(outcome, server.port, [f"/image/img/p{i}.jpg?w=100" for i in range(originals)])
            copies = VariantCache(cache / COPIES, 2**30)
            try:
                purged = sum(copies.purge(original_tag(f"img/p{i}.jpg")) for i in range(originals))
            finally:
                copies.close()
            before = upstream.gets.copy()
            upstream.broken = True
            answers, seconds = storm(
                server.port, 40, SHORT, lambda n: f"/image/img/p{n % 16}.jpg?w={101 + n // 16}"
            )
            count_upstream(outcome, upstream.gets - before)
    outcome.bound = originals * intervals(SHORT)
    outcome.extra["load_s"] = seconds
    outcome.notes.append(
        f"copies purged: {purged}; upstream GETs before the purge: {before.total()} (not counted above)"
    )
    if purged < originals:
        outcome.problems.append(f"only {purged} copies purged, for {originals} originals")
    tally(outcome, answers, expected={"": {502}})
    return outcome


def truncated(args: argparse.Namespace, scratch: Path, jpeg: bytes) -> Outcome:
    """A half JPEG, honestly framed (415), and a body shorter than declared (502): never a 200."""
    outcome = Outcome("truncated")
    originals = 8
    with web_originals() as upstream:
        for i in range(originals):
            upstream.files[f"p{i}.jpg"] = jpeg
        env = {"PROXY_SOURCE": f"half/={upstream.base}half/,lying/={upstream.base}lying/"}
        with (
            origin(scratch / "truncated", args.timeout, env, outcome) as server,
            WorkerWatch(server, outcome),
        ):

            def path(n: int) -> str:
                return f"/image/{('half', 'lying')[n % 2]}/p{n // 2 % originals}.jpg?w={20 + n // 16}"

            answers, seconds = storm(server.port, 20, SHORT, path)
            count_upstream(outcome, upstream.gets)
    outcome.bound = 2 * originals * intervals(SHORT)
    outcome.extra["load_s"] = seconds
    tally(outcome, answers, expected={"/image/half/": {415}, "/image/lying/": {502}})
    return outcome


# --- load, hits, memory ---------------------------------------------------------------------


def warm_up(outcome: Outcome, port: int, paths: list[str]) -> int:
    """Each path asked once, one after another, so that its original is known (a version and a
    local copy); any not answered 200 is asked once more, RETRY later. How many were asked again."""
    first = [get(port, path) for path in paths]
    again = [path for path, status, _ in first if status != 200]
    second = []
    if again:
        time.sleep(RETRY + 0.2)  # the failure is forgotten
        second = [get(port, path) for path in again]
    outcome.slowest = max(seconds for _, _, seconds in first + second)
    note = f"warm-up, one each, one after another: {_counts(Counter(s for _, s, _ in first))}"
    if again:
        note += f"; asked again {RETRY:g} s later: {_counts(Counter(s for _, s, _ in second))}"
    outcome.notes.append(f"{note}; slowest {outcome.slowest:.2f} s")
    if any(status != 200 for _, status, _ in second):
        outcome.problems.append("the warm-up did not make every original known")
    return len(again)


def get(port: int, path: str) -> Answer:
    """One request on a fresh connection; a connection that fails is status 0, not an exception."""
    started = time.monotonic()
    try:
        status, _, seconds = timed_get(port, path)
    except (OSError, http.client.HTTPException):
        return path, 0, time.monotonic() - started
    return path, status, seconds


def storm(port: int, clients: int, seconds: float, path: Callable[[int], str]) -> tuple[list[Answer], float]:
    """``clients`` connections asking ``path(n)``, a new n each time, as soon as answered, for
    ``seconds``; the answers and how long until the last came (the last ones start before the end)."""
    counter = iter(range(10**9))
    lock = threading.Lock()
    started = time.monotonic()
    until = started + seconds

    def client() -> list[Answer]:
        answers = []
        while time.monotonic() < until:
            with lock:
                n = next(counter)
            answers.append(get(port, path(n)))
        return answers

    with ThreadPoolExecutor(clients) as pool:
        answers = [answer for batch in pool.map(lambda _: client(), range(clients)) for answer in batch]
    return answers, time.monotonic() - started


WRK_SCRIPT = """
local threads = {}
setup = function(thread) table.insert(threads, thread) end
n = -1
statuses = {}
request = function()
  n = n + 1
  return wrk.format("GET", string.format("@PATH@", n % 16, 20 + math.floor(n / 16)))
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  local parts = {}  -- done runs in wrk's main state: the counts are the thread's
  for status, count in pairs(threads[1]:get("statuses")) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local quantiles = {}  -- the time distribution, at 0.25%, 0.75%, ... 99.75%
  for i = 0, 199 do table.insert(quantiles, latency:percentile((i + 0.5) / 2)) end
  local e = summary.errors
  io.write(string.format('WRK {"statuses": {%s}, "max_us": %d, "quantiles_us": [%s], "failed": %d}\\n',
    table.concat(parts, ", "), latency.max, table.concat(quantiles, ", "),
    e.connect + e.read + e.write + e.timeout))
end
"""


def storm_wrk(
    port: int, clients: int, seconds: float, path: Callable[[int], str]
) -> tuple[list[Answer], float]:
    """``storm`` driven by wrk: ``clients`` keep-alive connections from one C thread, a new n per
    request. ``path`` must be ``f"...p{n % 16}.jpg?w={20 + n // 16}"`` (wrk's script builds it).
    wrk counts statuses and times apart: the answers are its counts per status, their times drawn
    in order from its distribution (200 quantiles) and the last its slowest, so that the tally's
    statuses and percentiles hold, though which status took which time is not known."""
    template = path(0).replace("p0.", "p%d.").replace("w=20", "w=%d")
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_SCRIPT.replace("@PATH@", template))
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(script)]
    started = time.monotonic()
    try:
        url = f"http://127.0.0.1:{port}"
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True)
    finally:
        script.unlink()
    found = json.loads(next(line[4:] for line in out.stdout.splitlines() if line.startswith("WRK ")))
    prefix = template.split("p%d")[0]
    statuses = [0] * found["failed"]
    for status, count in found["statuses"].items():
        statuses += [int(status)] * count
    quantiles = found["quantiles_us"]
    times = [quantiles[i * len(quantiles) // len(statuses)] / 1e6 for i in range(len(statuses))]
    if times:
        times[-1] = found["max_us"] / 1e6
    answers = [(prefix, status, seconds) for status, seconds in zip(statuses, times, strict=True)]
    return answers, time.monotonic() - started


class HitLoop:
    """Asks ``path`` every 10 ms on a thread of its own until the block ends: (status X-Cache, seconds)."""

    def __init__(self, port: int, path: str) -> None:
        self.answers: list[tuple[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(port, path), daemon=True)

    def _run(self, port: int, path: str) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                status, headers, seconds = timed_get(port, path)
                answer = f"{status} {headers.get('x-cache', '-')}"
            except (OSError, http.client.HTTPException) as error:
                answer, seconds = type(error).__name__, time.monotonic() - started
            self.answers.append((answer, seconds))
            self._stop.wait(0.01)

    def __enter__(self) -> HitLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class WorkerWatch:
    """Samples the workers while the block runs: their peak RSS (every 0.2 s), and their threads'
    time on a CPU and runnable but waiting for one (every 1 s, from /proc/<pid>/task/*/schedstat:
    a thread that ended between samples loses its last second, so both are lower bounds)."""

    def __init__(self, server: Server, outcome: Outcome) -> None:
        self._server = server
        self._outcome = outcome
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._before: dict[int, tuple[int, int]] = {}  # thread id: ns on a CPU, ns waiting for one
        self._latest: dict[int, tuple[int, int]] = {}

    def _sample(self, schedule: bool) -> None:
        pids = self._server.workers()
        sizes = [_vmrss(pid) for pid in pids]
        self._outcome.rss_sum = max(self._outcome.rss_sum, sum(sizes) / MIB)
        self._outcome.rss_max = max(self._outcome.rss_max, max(sizes, default=0) / MIB)
        if schedule:
            for pid in pids:
                self._latest.update(_schedstats(pid))

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(0.2):
            ticks += 1
            self._sample(schedule=ticks % 5 == 0)

    def __enter__(self) -> WorkerWatch:
        self._sample(schedule=True)
        self._before = dict(self._latest)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(schedule=True)
        for thread, (running, waiting) in self._latest.items():
            ran, waited = self._before.get(thread, (0, 0))  # a thread started meanwhile: all of it
            self._outcome.cpu_s += (running - ran) / 1e9
            self._outcome.runq_s += (waiting - waited) / 1e9


def _schedstats(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread of a process: nanoseconds on a CPU and runnable in a run queue, so far."""
    stats = {}
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/schedstat") as schedstat:
                running, waiting, _ = schedstat.read().split()
        except (OSError, ValueError):
            continue
        stats[int(thread)] = int(running), int(waiting)
    return stats


def _vmrss(pid: int) -> int:
    """A process's resident set in bytes; 0 if it is gone (a worker recycled meanwhile)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return 0


@contextmanager
def origin(cache: Path, timeout: float, env: dict[str, str], outcome: Outcome) -> Iterator[Server]:
    """gunicorn as shipped on a cache directory of its own; its log's errors go into ``outcome``."""
    server = start_gunicorn(
        {
            "PROXY_CACHE_DIR": str(cache),
            "PROXY_FETCH_TIMEOUT": str(timeout),
            **env,
        },
        workers=None,
    )
    outcome.extra["workers"] = len(server.workers())
    start_load = os.getloadavg()[0]
    try:
        yield server
    finally:
        outcome.load = (start_load, os.getloadavg()[0])
        time.sleep(0.3)  # the access log's last lines are written within 0.1 s
        served = [
            (f"{entry['path']}?{entry['query']}", float(str(entry["ms"])) / 1000)
            for entry in _json_lines(server.out)
            if entry.get("message") == "request"
        ]
        outcome.app_slowest = max((took for path, took in served if path != HIT), default=0.0)
        outcome.app_hits = sorted(took for path, took in served if path == HIT)
        for entry in _json_lines(server.log):
            if entry.get("message") == "upstream fetch failed":
                outcome.attempts_logged += 1
            if entry.get("level") in ("error", "critical"):
                outcome.log_errors.append(json.dumps(entry))
        server.stop()


def _json_lines(path: Path) -> Iterator[dict[str, object]]:
    """The JSON objects of a log, one a line; anything else (a traceback's lines) skipped."""
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            yield entry


# --- verdicts and the report -------------------------------------------------------------------


def intervals(seconds: float) -> int:
    """RETRY intervals begun while new requests kept coming: one attempt per original in each."""
    return math.ceil(seconds / RETRY)


def count_upstream(outcome: Outcome, gets: Counter[str] | Counter[int]) -> None:
    """Requests that reached the upstream, counted per original."""
    outcome.upstream = gets.total()
    outcome.most = max(gets.values(), default=0)


def tally(
    outcome: Outcome, answers: list[Answer], expected: dict[str, set[int]], fast: float | None = None
) -> None:
    """Statuses and slowest answer, overall and per group of paths (by prefix, "" for all), each
    group held to its expected statuses and, if ``fast``, a median within it (the tail is the
    host's: every answer is held to the timeout's bound anyway)."""
    outcome.statuses.update(status for _, status, _ in answers)
    outcome.slowest = max([outcome.slowest] + [seconds for _, _, seconds in answers])  # with the warm-up's
    for prefix, wanted in expected.items():
        group = [(status, seconds) for path, status, seconds in answers if path.startswith(prefix)]
        statuses = Counter(status for status, _ in group)
        times = sorted(seconds for _, seconds in group) or [0.0]
        slowest = times[-1]
        name = prefix.removeprefix("/image/").rstrip("/") or "answers"
        outcome.notes.append(
            f"{name}: {_counts(statuses)}; p50 {percentile(times, 0.5) * 1000:.0f} ms, "
            f"p99 {percentile(times, 0.99) * 1000:.0f} ms, slowest {slowest:.2f} s"
        )
        outcome.extra[f"statuses {name}"] = {str(status): count for status, count in statuses.items()}
        if not group:
            outcome.problems.append(f"no requests for {name}")
        elif set(statuses) - wanted:
            outcome.problems.append(f"{name} answered {_counts(statuses)}, expected only {sorted(wanted)}")
        if fast is not None and percentile(times, 0.5) > fast:
            outcome.problems.append(
                f"{name}: median {percentile(times, 0.5):.2f} s, not at once (< {fast:g} s)"
            )


def judge(outcome: Outcome, timeout: float) -> None:
    """The targets every scenario shares, added to the scenario's own findings."""
    shared = []
    if outcome.statuses[500]:
        shared.append(f"500 x{outcome.statuses[500]}")
    if outcome.statuses[0]:
        shared.append(f"{outcome.statuses[0]} connections failed without an answer")
    if outcome.slowest > timeout + SLACK:
        shared.append(
            f"slowest answer {outcome.slowest:.2f} s, over timeout + {SLACK:.0f} s "
            f"(the slowest within the app: {outcome.app_slowest:.2f} s)"
        )
    if outcome.upstream > outcome.bound:
        shared.append(
            f"{outcome.upstream} upstream requests, over the bound of {outcome.bound} "
            f"(up to {outcome.most} for one original)"
        )
    if outcome.log_errors:
        shared.append(f"{len(outcome.log_errors)} error lines in gunicorn's log")
    outcome.problems[:0] = shared


def report(outcomes: list[Outcome], timeout: float) -> None:
    workers = max((int(str(o.extra.get("workers", 0))) for o in outcomes), default=0)
    threads = os.environ.get("GUNICORN_THREADS", "64")
    print(
        f"fetch timeout {timeout:g} s (PROXY_FETCH_TIMEOUT); any answer within {timeout + SLACK:g} s; "
        f"failures remembered {RETRY:g} s; gunicorn as shipped: {workers} workers x {threads} threads"
    )
    print(
        f"{'scenario':10} {'requests':>8} {'slowest s':>9} {'in app s':>8} {'upstream':>8} {'bound':>5} "
        f"{'max/orig':>8} {'RSS sum MiB':>11} {'RSS max MiB':>11} {'cpu s':>6} {'runq s':>6} "
        f"{'load':>7}  statuses"
    )
    for o in outcomes:
        load = f"{o.load[0]:.0f}->{o.load[1]:.0f}"
        print(
            f"{o.name:10} {o.statuses.total():8} {o.slowest:9.2f} {o.app_slowest:8.2f} {o.upstream:8} "
            f"{o.bound:5} {o.most:8} {o.rss_sum:11.0f} {o.rss_max:11.0f} {o.cpu_s:6.1f} {o.runq_s:6.1f} "
            f"{load:>7}  {_counts(o.statuses)}"
        )
    print()
    for o in outcomes:
        for note in o.notes:
            print(f"{o.name}: {note}")
    print()
    for o in outcomes:
        print(f"{o.name:10} {'ok' if not o.problems else 'NOT OK: ' + '; '.join(o.problems)}")
        for line in o.log_errors[:5]:
            print(f"    log: {line[:400]}")


def _spread(latencies: list[float]) -> str:
    """Sorted latencies, as a line says them."""
    return (
        f"{len(latencies)}, p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, slowest {latencies[-1] * 1000:.0f} ms"
    )


def _plain(outcome: Outcome) -> dict[str, object]:
    """The outcome as JSON can hold it (``asdict`` would rebuild the Counter from its items)."""
    plain = asdict(outcome)
    plain["statuses"] = {str(status): count for status, count in outcome.statuses.items()}
    del plain["app_hits"]  # summed up in extra
    return plain


def _counts(counter: Counter[int] | Counter[str]) -> str:
    return ", ".join(f"{key} x{count}" for key, count in sorted(counter.items(), key=str)) or "none"


if __name__ == "__main__":
    main()

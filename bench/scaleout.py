"""Scale-out behind nginx's consistent hash with the shared result tier: a 4th instance added, and
one restarted on an empty disk, against the same steps without the tier, in the same run.

    .venv/bin/python bench/scaleout.py [--originals 40] [--sizes 200,400,600,800,1000]
                                       [--formats jpeg,webp,png] [--workers 1] [--clients 8]
                                       [--window 60] [--baseline-originals 10]
                                       [--json bench/out/scaleout.json]

Everything is on loopback. moto's S3 server (tests/support/upstreams.py) holds the originals,
--originals photo-like JPEGs of about 1 MP in the bucket "originals", and the tier,
s3://renders/origin/. Each instance is a gunicorn as deployed (--workers each) with its own
empty PROXY_CACHE_DIR, behind deploy/nginx.conf as deploy/nginx_local.py writes it, with one
line changed: ``proxy_cache off``, so that every request reaches an instance. Kept on, nginx
would answer step 2 from its own copies, or, past its validity, revalidate them with a 304 that
an instance answers from a stat of the original, never looking at its cache.

1. 3 instances; every variant (originals x sizes x formats: N) asked once through nginx by
   --clients threads, then a wait until every render's write to the tier is done (they are off
   the request path: stored, failed or skipped, as /metrics counts them), and a count of the
   objects the tier holds.
2. A 4th instance on an empty disk; nginx's configuration rewritten with 4 servers and reloaded
   (SIGHUP, then a wait until none of the old nginx workers is left). For --window seconds (the
   instance's first minute by default, and at least one whole pass) the clients ask the N
   variants again through nginx, in passes of a new shuffled order each.
3. One of the first 3 instances stopped, its cache directory deleted, and started again on the
   same port: the N variants asked straight at it, once each.

Then the baseline: the same steps with no tier (PROXY_RESULT_STORE empty) over the first
--baseline-originals originals, with one pass in step 2.

Renders, local hits, shared hits and the tier's read and write outcomes per instance are deltas
of each instance's /metrics, asked on its own port (nginx hides the origin's X-Cache), once
every render's write to the tier is done. Which instance answered a request sent through nginx
is found by its X-Request-Id (nginx's $request_id, which the origin keeps, logs and echoes) in
the instances' access logs; the 4th instance's latencies are those of its requests as this
process's clients saw them through nginx, and the time each spent in the app (its access log's
"ms"); the p99 of the requests sent after the step's first second is printed as well, apart
from a new worker's first requests. moto's server runs in a process of its own, so that the
clients' threads here do not share its interpreter lock; it is slower than S3 itself (a shared
hit's time is mostly its GET).

Targets (docs/caching.md, "The shared result tier"): in step 2 the 4th instance renders none of
the variants it took over (all were rendered in step 1); in step 3 the restarted instance
answers at least 99% of the known variants without rendering (HIT-SHARED or HIT). A render of
a variant is split by whether the tier held its object (named by the variant's hash, which is
its ETag) when the step began: a render of one it held is the tier failing to answer, one it
did not hold a write lost earlier. Prints a table per step and scenario, the ratios against the
baseline and a verdict per target; writes the figures to --json. Takes about 3 minutes on 2
cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deploy import nginx_local  # noqa: E402
from proxy.gate import gate_directory  # noqa: E402
from tests.support.images import encode, photo  # noqa: E402
from tests.support.load import percentile, timed_get  # noqa: E402
from tests.support.servers import Server, free_port, gunicorn_command, http_request, start_gunicorn  # noqa: E402

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
ORIGINALS, RENDERS, PREFIX = "originals", "renders", "origin/"
WITHOUT_RENDERING = 0.99  # the share of known variants a restarted instance answers without a render
SETTLE = 120.0  # seconds the tier's writes may take to land after step 1
RUNS = "image_origin_pipeline_runs_total"
OUTCOME = 'image_origin_cache_requests_total{{outcome="{}"}}'
READS = 'image_origin_result_reads_total{{outcome="{}"}}'
WRITES = 'image_origin_result_writes_total{{outcome="{}"}}'
READ_OUTCOMES = ("hit", "miss", "expired", "damaged", "timeout", "error", "skipped")
WRITE_OUTCOMES = ("stored", "error", "dropped", "skipped")


@dataclass
class Answer:
    """One request as the client saw it, and who answered it (from the access logs)."""

    uri: str
    status: int
    ident: str  # X-Request-Id
    cache: str  # X-Cache as the client saw it: the origin's when asked straight, else nginx's
    seconds: float
    round: int  # the pass it belongs to, from 1
    at: float  # seconds after the step began that it was sent
    etag: str  # unquoted: the variant's hash, which names its object in the tier
    instance: str = ""  # the instance whose access log has the request id
    app_cache: str = ""  # the X-Cache that instance logged
    app_ms: float = 0.0


@dataclass
class Instance:
    name: str
    env: dict[str, str]
    server: Server
    lines: list[dict[str, object]] = field(default_factory=list)  # access lines of former runs
    errors: str = ""  # gunicorn's stderr of former runs

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def access(self) -> list[dict[str, object]]:
        return self.lines + self.server.access_lines()

    def log_text(self) -> str:
        return self.errors + self.server.log_text()


class Cluster:
    """Instances on moto's S3, behind one nginx front; everything it started, it stops."""

    def __init__(self, scratch: Path, endpoint: str, tier: bool, workers: int) -> None:
        self.scratch, self.endpoint, self.tier, self.workers = scratch, endpoint, tier, workers
        self.instances: list[Instance] = []
        self.prefix = nginx_local.scratch("bench-scaleout-nginx")
        self.port = free_port()
        self.nginx: subprocess.Popen[bytes] | None = None

    def env(self, name: str) -> dict[str, str]:
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "PROXY_SOURCE": f"s3://{ORIGINALS}/",
            "PROXY_RESULT_STORE": f"s3://{RENDERS}/{PREFIX}" if self.tier else "",
            "PROXY_CACHE_DIR": str(self.scratch / f"cache-{name}"),
        }

    def add(self, name: str) -> Instance:
        env = self.env(name)
        instance = Instance(name, env, start_gunicorn(env, workers=self.workers))
        self.instances.append(instance)
        return instance

    def front(self) -> None:
        """nginx over the instances: started, or reloaded with the new list once it runs."""
        command = nginx_local.write_config(self.prefix, self.port, *(i.address for i in self.instances))
        conf = self.prefix / "image-origin.conf"
        text = conf.read_text()
        assert text.count("proxy_cache image_origin;") == 1, "deploy/nginx.conf's proxy_cache line moved"
        conf.write_text(text.replace("proxy_cache image_origin;", "proxy_cache off;"))
        if self.nginx is None:
            self.nginx = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            master, old = self.nginx.pid, _children(self.nginx.pid)
            self.nginx.send_signal(signal.SIGHUP)  # a reload: new workers, the old ones finish and go
            _until(lambda: bool(_children(master)) and not old & _children(master), 30)
        _until(lambda: _status(self.port, "/healthz") == 200, 30)

    def restart(self, instance: Instance) -> None:
        """``instance`` stopped, its cache directory deleted, and started again on its port."""
        port = instance.server.port
        instance.lines += instance.server.access_lines()
        instance.errors += instance.server.log_text()
        instance.server.stop()
        shutil.rmtree(instance.env["PROXY_CACHE_DIR"])
        instance.server = _start_at(port, instance.env, self.workers)

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for instance in self.instances:
            instance.server.stop()
            # the transform gate's files, which the origin keeps outside the cache directory
            shutil.rmtree(gate_directory(Path(instance.env["PROXY_CACHE_DIR"])), ignore_errors=True)
        shutil.rmtree(self.prefix, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=40, help="photo-like JPEGs of about 1 MP in S3")
    parser.add_argument("--sizes", default="200,400,600,800,1000", help="widths asked, comma-separated")
    parser.add_argument("--formats", default="jpeg,webp,png", help="fmt= values asked, comma-separated")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers per instance")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of step 2 (at least one pass)")
    parser.add_argument("--baseline-originals", type=int, default=10, help="originals of the baseline")
    parser.add_argument("--json", type=Path, default=Path("bench/out/scaleout.json"))
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    formats = [name.strip() for name in args.formats.split(",") if name.strip()]
    started, load = time.monotonic(), os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    stack = ExitStack()
    try:
        endpoint = stack.enter_context(moto_s3(scratch))
        client = _client(endpoint)
        client.create_bucket(Bucket=ORIGINALS)
        client.create_bucket(Bucket=RENDERS)
        names, megabytes = _upload(client, args.originals)
        print(
            f"{len(names)} originals in S3 (about 1 MP JPEG q90, {megabytes:.1f} MB in all); sizes {sizes};"
            f" formats {formats}; {args.workers} worker(s) per instance; {args.clients} clients;"
            f" {os.cpu_count()} CPUs, load average {load:.1f}"
        )
        uris = _uris(names, sizes, formats)
        tier = scenario("with the tier", scratch / "tier", endpoint, True, uris, args, args.window)
        base = _uris(names[: args.baseline_originals], sizes, formats)
        baseline = scenario("without (baseline)", scratch / "baseline", endpoint, False, base, args, 0.0)
    finally:
        stack.close()
        shutil.rmtree(scratch, ignore_errors=True)
    verdicts = compare(tier, baseline)
    seconds = time.monotonic() - started
    print(f"\nrun time {seconds:.0f} s; load average {os.getloadavg()[0]:.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "options": {k: str(v) for k, v in vars(args).items()},
                "cpus": os.cpu_count(),
                "load_average": {"start": load, "end": os.getloadavg()[0]},
                "run_s": seconds,
                "with_tier": tier,
                "baseline": baseline,
                "verdicts": verdicts,
            },
            indent=2,
        )
    )


def scenario(
    label: str,
    scratch: Path,
    endpoint: str,
    tier: bool,
    uris: list[str],
    args: argparse.Namespace,
    window: float,
) -> dict[str, Any]:
    """The three steps over ``uris`` with or without the tier; the figures, printed as they come."""
    scratch.mkdir()
    figures: dict[str, Any] = {"variants": len(uris)}
    with _cluster(scratch, endpoint, tier, args.workers) as cluster:
        for name in "abc":
            cluster.add(name)
        cluster.front()
        print(f"\n== {label}: {len(uris)} variants ==")

        # 1. every variant once, through nginx, on 3 instances
        before = _snapshot(cluster)
        first, took = drive(cluster.port, uris, args.clients, 0.0, seed=1)
        done = time.monotonic()
        step1 = _rows(cluster, before, _settle(cluster, before), _attribute(cluster, first))
        settled = {"seconds": time.monotonic() - done, "objects": len(_objects(endpoint))} if tier else {}
        figures["step1"] = {
            "seconds": took,
            "statuses": _statuses(first),
            "instances": step1,
            "tier": settled,
        }
        owner = {answer.uri: answer.instance for answer in first}
        _table(f"step 1: 3 instances, each variant once through nginx ({took:.1f} s)", step1, first)
        if settled:
            lost = {o: sum(row["writes"][o] for row in step1) for o in WRITE_OUTCOMES if o != "stored"}
            print(
                f"tier: {settled['objects']} objects for {len(uris)} renders, {settled['seconds']:.1f} s"
                f" after the last answer; writes not made: {lost}"
            )

        # 2. a 4th instance, nginx re-hashed, the same variants again for the window
        stored = _objects(endpoint) if tier else set()
        new = cluster.add("d")
        cluster.front()
        before = _snapshot(cluster)
        second, took = drive(cluster.port, uris, args.clients, window, seed=2)
        answers = _attribute(cluster, second)
        step2 = _rows(cluster, before, _settle(cluster, before), answers)
        rounds = max(answer.round for answer in second)
        figures["step2"] = {
            "seconds": took,
            "rounds": rounds,
            "requests": len(second),
            "statuses": _statuses(second),
            "instances": step2,
            "new": _newcomer(new.name, answers, owner, stored),
        }
        _table(
            f"step 2: instance {new.name} added, {len(second)} requests through nginx in {took:.1f} s"
            f" ({rounds} passes)",
            step2,
            second,
        )
        _print_newcomer(figures["step2"]["new"])

        # 3. an instance restarted on an empty disk, every variant straight at it
        stored = _objects(endpoint) if tier else set()
        restarted = cluster.instances[0]
        cluster.restart(restarted)
        before = _snapshot(cluster, [restarted])
        third, took = drive(restarted.server.port, uris, args.clients, 0.0, seed=3)
        step3 = _rows(cluster, before, _settle(cluster, before, [restarted]), _attribute(cluster, third))
        outcomes = Counter(answer.cache for answer in third)
        rendered = [answer for answer in third if answer.cache == "MISS"]
        figures["step3"] = {
            "seconds": took,
            "statuses": _statuses(third),
            "instances": step3,
            "answers": dict(outcomes),
            "without_rendering": (outcomes["HIT-SHARED"] + outcomes["HIT"]) / len(third),
            "rendered_in_tier": sum(1 for answer in rendered if answer.etag in stored),
            **_spread(third),
        }
        _table(
            f"step 3: instance {restarted.name} restarted on an empty disk, each variant once straight"
            f" at it ({took:.1f} s)",
            step3,
            third,
        )
        step = figures["step3"]
        print(
            f"answers {dict(sorted(outcomes.items()))}: {step['without_rendering']:.1%} without rendering"
            f" ({len(rendered)} renders, {step['rendered_in_tier']} of variants the tier held);"
            f" p50 {step['p50_ms']:.1f} ms, p99 {step['p99_ms']:.1f} ms"
            f" (sent after 1 s: {_ms(step['later_p99_ms'])})"
        )
        figures["log_warnings"] = _warnings(cluster)
        for line in figures["log_warnings"][:12]:
            print(f"log: {line}")
        if len(figures["log_warnings"]) > 12:
            print(f"log: ... {len(figures['log_warnings']) - 12} more warning and error lines")
    return figures


# --- load ---------------------------------------------------------------------------------------


def drive(port: int, uris: list[str], clients: int, window: float, seed: int) -> tuple[list[Answer], float]:
    """``clients`` connections asking ``uris`` in shuffled passes: one whole pass, then more until
    ``window`` seconds have passed; each request on a fresh connection, as timed_get makes them."""
    rng = random.Random(seed)
    lock = threading.Lock()
    order: list[str] = []
    place = {"round": 0, "index": 0}
    started = time.monotonic()

    def following() -> tuple[int, str] | None:
        with lock:
            if place["round"] > 1 and time.monotonic() - started >= window:
                return None
            if place["index"] == len(order):
                if place["round"] >= 1 and time.monotonic() - started >= window:
                    return None
                order[:] = rng.sample(uris, len(uris))
                place["round"] += 1
                place["index"] = 0
            place["index"] += 1
            return place["round"], order[place["index"] - 1]

    def client() -> list[Answer]:
        answers = []
        while (task := following()) is not None:
            sent = time.monotonic() - started
            status, headers, seconds = timed_get(port, task[1])
            answers.append(
                Answer(
                    task[1],
                    status,
                    headers.get("x-request-id", ""),
                    headers.get("x-cache", ""),
                    seconds,
                    task[0],
                    sent,
                    headers.get("etag", "").strip('"'),
                )
            )
        return answers

    with ThreadPoolExecutor(clients) as pool:
        answers = [answer for batch in pool.map(lambda _: client(), range(clients)) for answer in batch]
    return answers, time.monotonic() - started


def _attribute(cluster: Cluster, answers: list[Answer]) -> list[Answer]:
    """Each answer's instance, its logged X-Cache and time in the app, by request id (the access
    lines are written by a thread every 0.1 s: waited for, 5 s at most)."""
    logged: dict[str, tuple[str, dict[str, object]]] = {}

    def read() -> bool:
        logged.clear()
        for instance in cluster.instances:
            for line in instance.access():
                logged[str(line.get("id"))] = (instance.name, line)
        return all(answer.ident in logged for answer in answers)

    deadline = time.monotonic() + 5
    while not read() and time.monotonic() < deadline:
        time.sleep(0.1)
    for answer in answers:
        name, line = logged.get(answer.ident, ("?", {}))
        answer.instance, answer.app_cache = name, str(line.get("cache") or "")
        answer.app_ms = float(line.get("ms") or 0.0)  # type: ignore[arg-type]
    return answers


# --- figures --------------------------------------------------------------------------------------


def _snapshot(cluster: Cluster, only: list[Instance] | None = None) -> dict[str, dict[str, float]]:
    return {instance.name: _metrics(instance.server.port) for instance in only or cluster.instances}


def _metrics(port: int) -> dict[str, float]:
    status, _, body = http_request(port, "GET", "/metrics")
    assert status == 200, status
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return values


def _rows(
    cluster: Cluster,
    before: dict[str, dict[str, float]],
    after: dict[str, dict[str, float]],
    answers: list[Answer],
) -> list[dict[str, Any]]:
    """Per instance: the step's requests and variants (access logs), and its /metrics deltas."""
    rows = []
    for name, values in after.items():
        delta = {series: value - before[name].get(series, 0.0) for series, value in values.items()}
        mine = [answer for answer in answers if answer.instance == name]
        hits, shared, misses = (int(delta.get(OUTCOME.format(o), 0)) for o in ("hit", "shared", "miss"))
        rows.append(
            {
                "instance": name,
                "port": next(i.server.port for i in cluster.instances if i.name == name),
                "variants": len({answer.uri for answer in mine}),
                "requests": len(mine),
                "renders": int(delta.get(RUNS, 0)),
                "hits": hits,
                "shared": shared,
                "misses": misses,
                "hit_rate": (hits + shared) / max(1, hits + shared + misses),
                "reads": {o: int(delta.get(READS.format(o), 0)) for o in READ_OUTCOMES},
                "writes": {o: int(delta.get(WRITES.format(o), 0)) for o in WRITE_OUTCOMES},
            }
        )
    return rows


def _newcomer(name: str, answers: list[Answer], owner: dict[str, str], stored: set[str]) -> dict[str, Any]:
    """What the 4th instance answered: its share, its renders of variants rendered in step 1 (and
    of them, those whose object was in the tier when step 2 began), its latencies."""
    mine = [answer for answer in answers if answer.instance == name]
    first = [answer for answer in mine if answer.round == 1]
    moved = {}  # uri: step 2's instance, for variants answered by another instance than in step 1
    for answer in answers:
        if owner.get(answer.uri, answer.instance) != answer.instance:
            moved[answer.uri] = answer.instance
    logged = Counter(answer.app_cache for answer in mine)
    rendered = {
        answer.uri: answer.etag for answer in mine if answer.app_cache == "MISS" and answer.uri in owner
    }

    return {
        "instance": name,
        "share": len({answer.uri for answer in mine}),
        "rendered_known": len(rendered),
        "rendered_in_tier": sum(1 for etag in rendered.values() if etag in stored),
        "renders_logged": sum(1 for answer in mine if answer.app_cache == "MISS"),
        "logged": dict(logged),
        "hit_rate": (logged["HIT"] + logged["HIT-SHARED"]) / max(1, len(mine)),
        "moved_to_new": sum(1 for to in moved.values() if to == name),
        "moved_between_old": sum(1 for to in moved.values() if to != name),
        "unattributed": sum(1 for answer in answers if answer.instance == "?"),
        "first_pass": _spread(first),
        "window": _spread(mine),
    }


def _spread(chosen: list[Answer]) -> dict[str, float | None]:
    """Latencies of ``chosen``: the client's (p99 also of those sent after the step's first
    second), and in the app."""
    client = sorted(answer.seconds for answer in chosen) or [0.0]
    later = sorted(answer.seconds for answer in chosen if answer.at >= 1.0)
    app = sorted(answer.app_ms for answer in chosen) or [0.0]
    return {
        "requests": len(chosen),
        "p50_ms": percentile(client, 0.5) * 1000,
        "p99_ms": percentile(client, 0.99) * 1000,
        "later_requests": len(later),
        "later_p99_ms": percentile(later, 0.99) * 1000 if later else None,
        "app_p50_ms": percentile(app, 0.5),
        "app_p99_ms": percentile(app, 0.99),
    }


def _ms(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f} ms"


def _print_newcomer(new: dict[str, Any]) -> None:
    print(
        f"instance {new['instance']}: took over {new['share']} variants ({new['moved_to_new']} moved to it,"
        f" {new['moved_between_old']} moved between the old instances); rendered {new['rendered_known']} of"
        f" them ({new['rendered_in_tier']} of variants the tier held); answers"
        f" {dict(sorted(new['logged'].items()))}, hit rate {new['hit_rate']:.1%}"
    )
    for label, key in (("first pass", "first_pass"), ("whole window", "window")):
        spread = new[key]
        print(
            f"  {label:12} {spread['requests']:6} requests: client p50 {spread['p50_ms']:7.1f} ms,"
            f" p99 {spread['p99_ms']:7.1f} ms (sent after 1 s: {_ms(spread['later_p99_ms'])}); in the app"
            f" p50 {spread['app_p50_ms']:7.1f} ms, p99 {spread['app_p99_ms']:7.1f} ms"
        )
    if new["unattributed"]:
        print(f"  {new['unattributed']} answers found in no instance's access log")


def _table(title: str, rows: list[dict[str, Any]], answers: list[Answer]) -> None:
    """Per instance: requests and variants (access logs), renders and outcomes (/metrics deltas);
    then the statuses the clients got."""
    print(f"\n{title}")
    print(
        f"{'inst':4} {'port':>5} {'variants':>8} {'requests':>8} {'renders':>7} {'hits':>6} {'shared':>6}"
        f" {'misses':>6} {'hit rate':>8} | tier reads: {'hit':>4} {'miss':>4} {'tmout':>5} {'err':>4}"
        f" {'skip':>4} {'othr':>4} | writes: {'ok':>4} {'err':>4} {'drop':>4} {'skip':>4}"
    )
    for row in rows:
        reads, writes = row["reads"], row["writes"]
        print(
            f"{row['instance']:4} {row['port']:5} {row['variants']:8} {row['requests']:8} {row['renders']:7}"
            f" {row['hits']:6} {row['shared']:6} {row['misses']:6} {row['hit_rate']:8.1%} |"
            f" {'':11} {reads['hit']:4} {reads['miss']:4} {reads['timeout']:5} {reads['error']:4}"
            f" {reads['skipped']:4} {reads['expired'] + reads['damaged']:4} |"
            f" {'':7} {writes['stored']:4} {writes['error']:4} {writes['dropped']:4} {writes['skipped']:4}"
        )
    unattributed = sum(1 for answer in answers if answer.instance == "?")
    print(
        f"statuses {_statuses(answers)}"
        + (f"; {unattributed} answers in no access log" if unattributed else "")
    )


def compare(tier: dict[str, Any], baseline: dict[str, Any]) -> dict[str, str]:
    """The ratios against the baseline and a verdict per target, printed; the verdicts."""
    print("\n== against the baseline (same run) ==")
    new, old = tier["step2"]["new"], baseline["step2"]["new"]
    per_new = new["rendered_known"] / max(1, new["share"])
    per_old = old["rendered_known"] / max(1, old["share"])
    print(
        f"new instance, renders per variant taken over: {per_new:.3f} ({new['rendered_known']} of"
        f" {new['share']}) with the tier, {per_old:.3f} ({old['rendered_known']} of {old['share']})"
        f" without: ratio {per_new / per_old if per_old else float('nan'):.3f}"
    )
    for key in ("p50_ms", "p99_ms"):
        a, b = new["first_pass"][key], old["first_pass"][key]
        print(
            f"new instance, first pass {key[:3]}: {a:.1f} ms with the tier, {b:.1f} ms without:"
            f" ratio {a / b:.2f}"
        )
    kept, kept_base = tier["step3"]["without_rendering"], baseline["step3"]["without_rendering"]
    print(
        f"restarted instance, renders per known variant: {1 - kept:.3f} with the tier,"
        f" {1 - kept_base:.3f} without"
    )
    for key in ("p50_ms", "p99_ms"):
        a, b = tier["step3"][key], baseline["step3"][key]
        print(
            f"restarted instance {key[:3]}: {a:.1f} ms with the tier, {b:.1f} ms without: ratio {a / b:.2f}"
        )
    verdicts = {
        "new instance renders 0 of the variants it took over": (
            f"{'ok' if new['rendered_known'] == 0 else 'NOT OK'}: {new['rendered_known']} of {new['share']}"
            + (f" ({new['rendered_in_tier']} of them held by the tier)" if new["rendered_known"] else "")
        ),
        f"restarted instance answers >= {WITHOUT_RENDERING:.0%} without rendering": (
            f"{'ok' if kept >= WITHOUT_RENDERING else 'NOT OK'}: {kept:.1%}"
            f" ({round(kept * tier['variants'])} of {tier['variants']})"
            + (f"; {tier['step3']['rendered_in_tier']} of its renders held by the tier" if kept < 1 else "")
        ),
    }
    for target, verdict in verdicts.items():
        print(f"verdict: {target}: {verdict}")
    return verdicts


# --- helpers ------------------------------------------------------------------------------------


@contextmanager
def _cluster(scratch: Path, endpoint: str, tier: bool, workers: int) -> Iterator[Cluster]:
    cluster = Cluster(scratch, endpoint, tier, workers)
    try:
        yield cluster
    finally:
        cluster.stop()


_MOTO = """
import sys
from tests.support.upstreams import S3Server
server = S3Server()
server.start()
print(server.endpoint, flush=True)
sys.stdin.read()  # until the bench closes it, or ends
server.stop()
"""


@contextmanager
def moto_s3(scratch: Path) -> Iterator[str]:
    """moto's S3 server (tests/support/upstreams.py) in a process of its own, so that this
    process's client threads do not share its interpreter lock; its endpoint."""
    with (scratch / "moto.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _MOTO], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
        )
    try:
        assert process.stdout is not None and process.stdin is not None
        endpoint = process.stdout.readline().decode().strip()
        if not endpoint.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"moto's server did not start: {(scratch / 'moto.log').read_text()[-2000:]}")
        yield endpoint
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _objects(endpoint: str) -> set[str]:
    """The variant hashes the tier holds (its objects are named <original tag>/<variant hash>)."""
    names = set()
    for page in _client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=RENDERS, Prefix=PREFIX):
        names |= {entry["Key"].rpartition("/")[2] for entry in page.get("Contents", [])}
    return names


def _client(endpoint: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
    )
    return session.client("s3", endpoint_url=endpoint)


def _upload(client: Any, count: int) -> tuple[list[str], float]:
    """``count`` photo-like JPEGs of 1.0-1.2 MP in the originals' bucket; their names, and MB."""
    names, total = [], 0
    for index in range(count):
        width = 1200 + 40 * (index % 5)
        data = encode(
            photo(width, width * 2 // 3 + 40 * (index % 3), seed=index), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 90
        )
        client.put_object(Bucket=ORIGINALS, Key=f"p{index:03d}.jpg", Body=data, ContentType="image/jpeg")
        names.append(f"p{index:03d}.jpg")
        total += len(data)
    return names, total / 1e6


def _uris(names: list[str], sizes: list[int], formats: list[str]) -> list[str]:
    return [f"/image/{name}?w={size}&fmt={fmt}" for name in names for size in sizes for fmt in formats]


def _settle(
    cluster: Cluster, before: dict[str, dict[str, float]], only: list[Instance] | None = None
) -> dict[str, dict[str, float]]:
    """The instances' /metrics once each has done (stored, failed, dropped or skipped) the tier
    write of every render it made since ``before``: writes are off the request path."""
    started = time.monotonic()
    while True:
        after = _snapshot(cluster, only)
        behind = 0.0
        for name, values in after.items():
            runs = values.get(RUNS, 0.0) - before[name].get(RUNS, 0.0)
            writes = sum(
                values.get(WRITES.format(o), 0.0) - before[name].get(WRITES.format(o), 0.0)
                for o in WRITE_OUTCOMES
            )
            behind += max(0.0, runs - writes)
        if not behind or not cluster.tier or time.monotonic() - started > SETTLE:
            return after
        time.sleep(0.25)


def _statuses(answers: list[Answer]) -> dict[str, int]:
    return {str(status): count for status, count in sorted(Counter(a.status for a in answers).items())}


def _warnings(cluster: Cluster) -> list[str]:
    """The instances' warning and error lines (gunicorn's stderr), for the report."""
    lines = []
    for instance in cluster.instances:
        for line in instance.log_text().splitlines():
            if '"level": "warning"' in line or '"level": "error"' in line or '"level": "critical"' in line:
                lines.append(f"{instance.name}: {line[:300]}")
    return lines


def _start_at(port: int, env: dict[str, str], workers: int) -> Server:
    """gunicorn as start_gunicorn starts it, on a given port (an instance restarted where it was)."""
    log = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    out = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".out")[1])
    with log.open("wb") as stderr, out.open("wb") as stdout:
        process = subprocess.Popen(
            gunicorn_command(f"127.0.0.1:{port}", "--workers", str(workers)),
            cwd=REPO,
            env={**os.environ, **env},
            stdout=stdout,
            stderr=stderr,
        )
    server = Server(process, port, log, out)
    try:
        _until(lambda: process.poll() is not None or _status(port, "/healthz") == 200, 30)
    except Exception:
        server.stop()
        raise
    if process.poll() is not None:
        raise RuntimeError(f"gunicorn exited: {server.log_text()}")
    return server


def _status(port: int, path: str) -> int:
    try:
        return http_request(port, "GET", path)[0]
    except OSError:
        return 0


def _children(pid: int) -> set[int]:
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _until(done: Callable[[], bool], within: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"still waiting after {within:g} s")
        time.sleep(every)


if __name__ == "__main__":
    main()

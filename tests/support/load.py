"""HTTP load for the backpressure bench and tests: bursts, closed-loop storms, a hit prober.

Plain ``http.client`` on fresh connections, as browsers open them for a page's images; the
hit prober runs in a process of its own so that the storm's threads cannot delay it.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

Result = tuple[int, dict[str, str], float]  # status, headers (lower-case names), seconds


def timed_get(port: int, path: str) -> Result:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, time.monotonic() - started
    finally:
        connection.close()


def burst(port: int, paths: list[str]) -> list[Result]:
    """Every path requested at the same instant, each on its own connection, as a page does."""
    start = threading.Barrier(len(paths))

    def one(path: str) -> Result:
        start.wait()
        return timed_get(port, path)

    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(one, paths))


def storm(port: int, clients: int, seconds: float, path: Callable[[int], str]) -> tuple[list[Result], float]:
    """``clients`` connections each asking for ``path(n)``, a new n each time, as soon as answered,
    or, when refused, after the Retry-After it was given (as CDNs and well-behaved clients do)."""
    counter = iter(range(10**9))
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def client() -> list[Result]:
        results = []
        while time.monotonic() < until:
            with lock:
                n = next(counter)
            result = timed_get(port, path(n))
            results.append(result)
            if result[0] == 503:
                time.sleep(max(0.0, min(float(result[1].get("retry-after", 1)), until - time.monotonic())))
        return results

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        results = [result for batch in pool.map(lambda _: client(), range(clients)) for result in batch]
    return results, time.monotonic() - started


_PROBE = """
import http.client, json, sys, time
port, path, until = int(sys.argv[1]), sys.argv[2], time.monotonic() + float(sys.argv[3])
latencies, answers = [], set()
while time.monotonic() < until:
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    latencies.append(time.monotonic() - started)
    answers.add((response.status, response.getheader("X-Cache")))
    time.sleep(0.01)
print(json.dumps({"latencies": sorted(latencies), "answers": sorted(answers)}))
"""


class HitProbe:
    """Requests one path every 10 ms for ``seconds``, from another process; latencies when done."""

    def __init__(self, port: int, path: str, seconds: float) -> None:
        command = [sys.executable, "-c", _PROBE, str(port), path, str(seconds)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE)

    def result(self) -> tuple[list[float], list[list[object]]]:
        """Sorted latencies (seconds) and the distinct (status, X-Cache) answers."""
        report = json.loads(self._process.communicate(timeout=120)[0])
        return report["latencies"], report["answers"]

    def __enter__(self) -> HitProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        """However the load around it ended, the probe's process does not outlive it."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.communicate()


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]

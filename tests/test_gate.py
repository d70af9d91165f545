"""The transform gate: slots bound the transforms, misses queue, and refusals mean a long wait."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from proxy import create_app
from proxy.errors import Overloaded
from proxy.gate import TransformGate
from proxy.settings import Settings

from .support.servers import REPO, eventually


def transform(gate: TransformGate, seconds: float, running: list[int], peak: list[int]) -> float:
    """Hold a slot for ``seconds`` like a transform; returns how long the slot took to get."""
    arrived = time.monotonic()
    with gate.slot():
        waited = time.monotonic() - arrived
        running.append(1)
        peak.append(len(running))
        time.sleep(seconds)
        running.pop()
    return waited


def test_a_burst_waits_for_the_slots_instead_of_being_refused(tmp_path: Path) -> None:
    gate = TransformGate(tmp_path / "gate", slots=2, queue=48, wait=5)
    running: list[int] = []
    peak: list[int] = []
    with ThreadPoolExecutor(24) as pool:
        waits = list(pool.map(lambda _: transform(gate, 0.02, running, peak), range(24)))
    assert len(waits) == 24  # none refused
    assert max(peak) == 2  # never more than the slots at once
    assert max(waits) > 0.15  # the last ones queued: 24 x 20 ms / 2 slots


def test_waiting_misses_are_served_in_arrival_order(tmp_path: Path) -> None:
    gate = TransformGate(tmp_path / "gate", slots=1, queue=48, wait=5)
    order: list[int] = []

    def miss(n: int) -> None:
        with gate.slot():
            order.append(n)
            time.sleep(0.005)

    with gate.slot():  # every arrival below must queue
        threads = [threading.Thread(target=miss, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
            time.sleep(0.01)  # arrive one after another
    for thread in threads:
        thread.join(5)
    assert order == list(range(8))


def test_a_newcomer_does_not_take_the_slot_ahead_of_waiting_misses(tmp_path: Path) -> None:
    gate = TransformGate(tmp_path / "gate", slots=1, queue=48, wait=5)
    order: list[str] = []
    holder = gate.slot()
    holder.__enter__()
    waiter = threading.Thread(target=lambda: _in_slot(gate, order, "waiter"))
    waiter.start()
    time.sleep(0.05)
    holder.__exit__(None, None, None)  # the slot is free for an instant...
    _in_slot(gate, order, "newcomer")  # ...but the waiter came first
    waiter.join(5)
    assert order == ["waiter", "newcomer"]


def _in_slot(gate: TransformGate, order: list[str], name: str) -> None:
    with gate.slot():
        order.append(name)
        time.sleep(0.01)


@contextmanager
def holding_slots(directory: Path, slots: int) -> Iterator[None]:
    """Every slot held by another process, as other workers' transforms would."""
    script = (
        "import sys, time\nfrom pathlib import Path\nfrom proxy.gate import TransformGate\n"
        f"held = [TransformGate(Path(sys.argv[1]), {slots}, 0, 0.1).slot() for _ in range({slots})]\n"
        "[slot.__enter__() for slot in held]\nprint('held', flush=True)\ntime.sleep(60)\n"
    )
    command = [sys.executable, "-c", script, str(directory)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            yield
        finally:
            holder.kill()


@pytest.mark.integration
def test_a_miss_waits_at_most_the_wait_then_is_refused(tmp_path: Path) -> None:
    gate = TransformGate(tmp_path / "gate", slots=1, queue=48, wait=0.3)
    with holding_slots(tmp_path / "gate", 1):
        started = time.monotonic()
        with pytest.raises(Overloaded) as refused:
            with gate.slot():
                pass
        assert 0.25 < time.monotonic() - started < 1
    assert refused.value.reason == "waited"
    assert refused.value.retry_after >= 1


@pytest.mark.integration
def test_a_killed_workers_slot_is_released_at_once(tmp_path: Path) -> None:
    gate = TransformGate(tmp_path / "gate", slots=1, queue=0, wait=0.1)
    with holding_slots(tmp_path / "gate", 1):
        with pytest.raises(Overloaded):
            with gate.slot():
                pass
    with gate.slot():  # the holder was killed: its slot is free at once
        pass


@pytest.mark.integration
def test_expected_wait_over_the_limit_is_refused_up_front(tmp_path: Path) -> None:
    """Three misses waiting for one slot at a median of 1 s each: a fourth would wait ~3 s."""
    gate = TransformGate(tmp_path / "gate", slots=1, queue=48, wait=2)
    for _ in range(3):
        gate._this_worker().record(1.0)  # the median of recent transforms, as if measured
    results: list[str] = []
    with holding_slots(tmp_path / "gate", 1):
        waiters = [threading.Thread(target=_wait_for_slot, args=(gate, results)) for _ in range(3)]
        for waiter in waiters:
            waiter.start()
        assert eventually(lambda: gate.expected_wait() >= 3, every=0.005)
        started = time.monotonic()
        with pytest.raises(Overloaded) as refused:
            with gate.slot():
                pass
        assert time.monotonic() - started < 0.1  # refused at once, not after waiting
    for waiter in waiters:
        waiter.join(5)
    assert refused.value.reason == "expected_wait"
    assert refused.value.retry_after == 3  # the expected wait, in whole seconds
    assert results == ["slot"] * 3  # those already waiting got the slot once it was free


def _wait_for_slot(gate: TransformGate, results: list[str]) -> None:
    try:
        with gate.slot():
            results.append("slot")
    except Overloaded as error:
        results.append(error.reason)


@pytest.mark.integration
def test_the_queue_cap_refuses_beyond_it(tmp_path: Path) -> None:
    gate = TransformGate(tmp_path / "gate", slots=1, queue=2, wait=1)
    results: list[str] = []
    with holding_slots(tmp_path / "gate", 1):
        waiters = [threading.Thread(target=_wait_for_slot, args=(gate, results)) for _ in range(2)]
        for waiter in waiters:
            waiter.start()
        assert eventually(lambda: gate._this_worker().waiting() == 2, every=0.005)
        with pytest.raises(Overloaded) as refused:
            with gate.slot():
                pass
        assert refused.value.reason == "queue_full"
        for waiter in waiters:
            waiter.join(5)
    assert results == ["waited", "waited"]


DEAD_WAITER = """
import sys, threading
from pathlib import Path
from proxy.gate import TransformGate
gate = TransformGate(Path(sys.argv[1]), 1, 48, 60)

def transform():
    with gate.slot():
        threading.Event().wait()  # holds the slot until killed

for _ in range(5):
    threading.Thread(target=transform, daemon=True).start()
while gate._this_worker().waiting() < 4:
    pass
print("waiting", flush=True)
threading.Event().wait()
"""


@pytest.mark.integration
def test_a_dead_workers_waiting_misses_stop_counting(tmp_path: Path) -> None:
    gate = TransformGate(tmp_path / "gate", slots=1, queue=48, wait=1)
    with subprocess.Popen(
        [sys.executable, "-c", DEAD_WAITER, str(tmp_path / "gate")], stdout=subprocess.PIPE, cwd=REPO
    ) as other:
        assert other.stdout is not None and other.stdout.readline() == b"waiting\n"
        gate._this_worker().record(1.0)
        assert gate.expected_wait() >= 4  # one holds the slot, four wait, one second each
        other.kill()
    assert gate.expected_wait() == 0
    with gate.slot():  # and the slot its holder died with is free
        pass


def test_503_carries_retry_after_and_is_counted(settings: Settings) -> None:
    app = create_app(replace(settings, max_transforms=1, transform_queue=0))
    client: FlaskClient = app.test_client()
    with app.extensions["proxy"].gate.slot():  # another request is transforming
        response = client.get("/image/photo.jpg?w=10")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit() and int(response.headers["Retry-After"]) >= 1
    assert response.headers["Cache-Control"] == "no-store"
    assert "waiting" in response.get_json()["error"]
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'image_origin_transform_refusals_total{reason="queue_full"}' in metrics
    assert client.get("/image/photo.jpg?w=10").status_code == 200

"""proxy/s3client.py: a body read is cut at its deadline however slowly it trickles, and at its
limit, over a real pipe whose writer sends a little at a time (botocore hands the same urllib3
stream, whose ``read1`` returns what has arrived)."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator

import pytest

from proxy.s3client import Overdue, Overlong, read_within


@pytest.fixture
def trickle() -> Iterator[io.BufferedReader]:
    """A stream that gets 10 bytes every 10 ms, 40 times: 400 bytes in 0.4 s."""
    read, write = os.pipe()
    stop = threading.Event()

    def send() -> None:
        for _ in range(40):
            if stop.wait(0.01):
                break
            try:
                os.write(write, b"x" * 10)
            except OSError:
                break
        os.close(write)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    stream = io.BufferedReader(io.FileIO(read))
    yield stream
    stop.set()
    sender.join()
    stream.close()


def test_a_trickle_is_cut_at_the_deadline(trickle: io.BufferedReader) -> None:
    started = time.monotonic()
    with pytest.raises(Overdue):
        read_within(trickle, started + 0.1)
    assert time.monotonic() - started < 0.25  # one read past the deadline at most: 10 ms


def test_a_body_over_the_limit_is_cut_there(trickle: io.BufferedReader) -> None:
    with pytest.raises(Overlong):
        read_within(trickle, time.monotonic() + 5, limit=95)


def test_a_whole_body_within_both_is_read(trickle: io.BufferedReader) -> None:
    assert read_within(trickle, time.monotonic() + 5, limit=400) == b"x" * 400

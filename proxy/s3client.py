"""What S3 sources (sources/s3.py) and the S3 result tier (results/s3.py) share: a boto3 client
made once per process, and a body read that a trickle cannot hold past a deadline.

The client is made on first use in each worker, never inherited across gunicorn's fork, with
one attempt per call: a failing bucket is answered (a 502, a miss), not retried, which would
double the wait (botocore's ``max_attempts`` counts retries, not attempts). Imported only by
those two modules, which their packages import on demand: boto3 takes a while to load.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import boto3
from botocore.config import Config

CHUNK = 1 << 16  # at most this much per read; a read returns what has arrived (read1)


class Overdue(Exception):
    """The body was still coming at the deadline."""


class Overlong(Exception):
    """The body was longer than the limit."""


class Client:
    """``client()``: this process's boto3 S3 client, timeouts of ``timeout`` seconds to connect
    and per read, ``connections`` in its pool (one per thread that may call it at once)."""

    def __init__(self, timeout: float, connections: int = 10) -> None:
        self._timeout = timeout
        self._connections = connections
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        if self._pid != os.getpid():
            with self._lock:  # boto3 sessions are not thread-safe while making clients
                if self._pid != os.getpid():
                    config = Config(
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        max_pool_connections=self._connections,
                    )
                    self._client = boto3.session.Session().client("s3", config=config)
                    self._pid = os.getpid()
        return self._client


def read_within(body: Any, deadline: float, limit: int | None = None) -> bytes:
    """The body, cut at ``deadline`` however slowly it trickles (Overdue), and at most ``limit``
    bytes (Overlong).

    botocore's ``StreamingBody.read(n)`` returns only once ``n`` bytes have come, so a trickle
    would hold it far past the deadline; its urllib3 response's ``read1`` returns what has
    arrived, and the deadline is checked after every read."""
    stream: Any = getattr(body, "_raw_stream", body)
    read = stream.read1 if hasattr(stream, "read1") else body.read
    chunks: list[bytes] = []
    size = 0
    with body:
        while chunk := read(CHUNK):
            size += len(chunk)
            if limit is not None and size > limit:
                raise Overlong()
            if time.monotonic() > deadline:
                raise Overdue()
            chunks.append(chunk)
    return b"".join(chunks)

"""Originals in an S3-compatible bucket (``s3://bucket/prefix``), through boto3.

Credentials, region and endpoint come from the standard AWS configuration (environment,
profiles, instance roles; ``AWS_ENDPOINT_URL`` for MinIO, R2 and the like). The client is
made in each worker process on first use, never inherited across gunicorn's fork.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError
from urllib3.exceptions import HTTPError, TimeoutError

from ..errors import SourceTooLarge
from .remote import Fetched, Missing, UpstreamError

CHUNK = 1 << 16  # at most this much per read; a read returns what has arrived (read1)


class S3Upstream:
    def __init__(self, location: str, timeout: float) -> None:
        self.bucket, _, self.prefix = location.partition("/")
        self.name = f"s3://{location}"
        self._timeout = timeout
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def fetch(
        self, key: str, etag: str | None, modified: datetime | None, limit: int, deadline: float
    ) -> Fetched | None:
        request = {"Bucket": self.bucket, "Key": self.prefix + key}
        if etag is not None:
            request["IfNoneMatch"] = f'"{etag}"'
        elif modified is not None:
            request["IfModifiedSince"] = modified  # type: ignore[assignment]
        try:
            response = self._s3().get_object(**request)
            declared = response.get("ContentLength")
            if declared is not None and declared > limit:
                response["Body"].close()
                raise _too_large(limit)
            data = _read(response["Body"], limit, deadline)
            if declared is not None and len(data) != declared:
                raise UpstreamError(f"{self.name}{key}: {len(data)} bytes of a declared {declared}")
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 304:
                return None
            if status in (403, 404):
                raise Missing() from None
            code = error.response.get("Error", {}).get("Code")
            raise UpstreamError(f"{self.name}: {status} {code}") from None
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as error:  # botocore's, urllib3's
            raise UpstreamError(f"{self.name}: {error}", timeout=True) from None
        except (BotoCoreError, HTTPError) as error:  # refused, DNS, malformed or short answers
            raise UpstreamError(f"{self.name}: {error}") from None
        return Fetched(data, response.get("ETag", "").strip('"') or None, response.get("LastModified"))

    def _s3(self) -> Any:
        if self._pid != os.getpid():
            with self._lock:  # boto3 sessions are not thread-safe while making clients
                if self._pid != os.getpid():
                    config = Config(
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                        # One attempt: a failing upstream is answered (and remembered), not retried,
                        # which would double the wait ("max_attempts" counts retries, not attempts).
                        retries={"total_max_attempts": 1, "mode": "standard"},
                    )
                    self._client = boto3.session.Session().client("s3", config=config)
                    self._pid = os.getpid()
        return self._client


def _read(body: Any, limit: int, deadline: float) -> bytes:
    """The body, at most ``limit`` bytes, cut at ``deadline`` however slowly it trickles.

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
            if size > limit:
                raise _too_large(limit)
            if time.monotonic() > deadline:
                raise UpstreamError("download took too long", timeout=True)
            chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> SourceTooLarge:
    return SourceTooLarge(f"original is over the {limit}-byte limit")

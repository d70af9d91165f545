"""Originals in an S3-compatible bucket (``s3://bucket/prefix``), through boto3.

Credentials, region and endpoint come from the standard AWS configuration (environment,
profiles, instance roles; ``AWS_ENDPOINT_URL`` for MinIO, R2 and the like). The client is
made in each worker process on first use, never inherited across gunicorn's fork.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from ..errors import SourceTooLarge
from .remote import Fetched, Missing, UpstreamError

CHUNK = 1 << 20


class S3Upstream:
    def __init__(self, location: str, timeout: float) -> None:
        self.bucket, _, self.prefix = location.partition("/")
        self.name = f"s3://{location}"
        self._timeout = timeout
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def fetch(self, key: str, etag: str | None, limit: int) -> Fetched | None:
        deadline = time.monotonic() + self._timeout
        request = {"Bucket": self.bucket, "Key": self.prefix + key}
        if etag is not None:
            request["IfNoneMatch"] = f'"{etag}"'
        try:
            response = self._s3().get_object(**request)
            if response.get("ContentLength", 0) > limit:
                response["Body"].close()
                raise _too_large(limit)
            data = _read(response["Body"], limit, deadline)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 304:
                return None
            if status in (403, 404):
                raise Missing() from None
            code = error.response.get("Error", {}).get("Code")
            raise UpstreamError(f"{self.name}: {status} {code}") from None
        except (ConnectTimeoutError, ReadTimeoutError) as error:
            raise UpstreamError(f"{self.name}: {error}", timeout=True) from None
        except BotoCoreError as error:  # connection refused, DNS, malformed answers
            raise UpstreamError(f"{self.name}: {error}") from None
        return Fetched(data, response.get("ETag", "").strip('"') or None, response.get("LastModified"))

    def _s3(self) -> Any:
        if self._pid != os.getpid():
            with self._lock:  # boto3 sessions are not thread-safe while making clients
                if self._pid != os.getpid():
                    config = Config(
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                        retries={"max_attempts": 1},  # a failing upstream is answered, not retried
                    )
                    self._client = boto3.session.Session().client("s3", config=config)
                    self._pid = os.getpid()
        return self._client


def _read(body: Any, limit: int, deadline: float) -> bytes:
    """The body, at most ``limit`` bytes, within the fetch's deadline."""
    chunks: list[bytes] = []
    size = 0
    with body:
        while chunk := body.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            if time.monotonic() > deadline:
                raise UpstreamError("download took too long", timeout=True)
            chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> SourceTooLarge:
    return SourceTooLarge(f"original is over the {limit}-byte limit")

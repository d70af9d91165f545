"""The result tier in an S3-compatible bucket: ``s3://bucket/prefix/``, through boto3.

Credentials, region and endpoint come from the same standard AWS configuration as S3 sources
(``AWS_ENDPOINT_URL`` for MinIO, R2 and the like). Every call is one attempt, bounded by the
tier's timeout to connect and per read: a failing tier is a miss, never a retry, and a read is
also cut when its whole body takes longer. The client is made in each worker, after the fork.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .base import Stored

META = ("variant", "digest", "stored", "tag", "pipeline")  # what ResultTier writes and reads
CHUNK = 1 << 16


class S3Results:
    def __init__(self, location: str, timeout: float) -> None:
        self.bucket, _, self.prefix = location.partition("/")
        self.name = f"s3://{location}"
        self._timeout = timeout
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def prepare(self) -> None:
        self._s3()

    def read(self, name: str) -> Stored | None:
        try:
            response = self._s3().get_object(Bucket=self.bucket, Key=self.prefix + name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise  # 403 and the rest: a failure, which counts towards the cool-down
        data = _read(response["Body"], time.monotonic() + self._timeout)
        meta = {k: v for k, v in response.get("Metadata", {}).items() if k in META}
        return Stored(data, response.get("ContentType", ""), meta)

    def write(self, name: str, data: bytes, mime: str, meta: dict[str, str]) -> None:
        self._s3().put_object(
            Bucket=self.bucket, Key=self.prefix + name, Body=data, ContentType=mime, Metadata=meta
        )

    def delete(self, name: str) -> None:
        self._s3().delete_object(Bucket=self.bucket, Key=self.prefix + name)

    def delete_prefix(self, prefix: str) -> int:
        client = self._s3()
        deleted = 0
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        ):
            keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
            if keys:  # a page holds at most 1000 keys, as many as one DeleteObjects takes
                client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def _s3(self) -> Any:
        if self._pid != os.getpid():
            with self._lock:  # boto3 sessions are not thread-safe while making clients
                if self._pid != os.getpid():
                    config = Config(
                        connect_timeout=self._timeout,
                        read_timeout=self._timeout,
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        max_pool_connections=16,  # the tier's readers and writers, and purges
                    )
                    self._client = boto3.session.Session().client("s3", config=config)
                    self._pid = os.getpid()
        return self._client


def _read(body: Any, deadline: float) -> bytes:
    """The body, cut at ``deadline`` however slowly it trickles (read1 returns what has come)."""
    stream: Any = getattr(body, "_raw_stream", body)
    read = stream.read1 if hasattr(stream, "read1") else body.read
    chunks: list[bytes] = []
    with body:
        while chunk := read(CHUNK):
            if time.monotonic() > deadline:
                raise TimeoutError("the object took too long to read")
            chunks.append(chunk)
    return b"".join(chunks)

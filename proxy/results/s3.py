"""The result tier in an S3-compatible bucket: ``s3://bucket/prefix/``, through boto3.

Credentials, region and endpoint come from the same standard AWS configuration as S3 sources
(``AWS_ENDPOINT_URL`` for MinIO, R2 and the like). Every call is one attempt, bounded by the
tier's timeout to connect and per read: a failing tier is a miss, never a retry, and a read is
also cut when its whole body takes longer (s3client.py, shared with S3 sources).
"""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from ..s3client import Client, read_within
from .base import Stored

META = ("variant", "digest", "stored", "tag", "pipeline")  # what ResultTier writes and reads


class S3Results:
    def __init__(self, location: str, timeout: float) -> None:
        self.bucket, _, self.prefix = location.partition("/")
        self.name = f"s3://{location}"
        self._timeout = timeout
        self._s3 = Client(timeout, connections=16)  # the tier's readers and writers, and purges

    def prepare(self) -> None:
        self._s3()

    def read(self, name: str) -> Stored | None:
        try:
            response = self._s3().get_object(Bucket=self.bucket, Key=self.prefix + name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise  # 403 and the rest: a failure, which counts towards the cool-down
        data = read_within(response["Body"], time.monotonic() + self._timeout)  # Overdue: a failure
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

"""Originals in an S3-compatible bucket (``s3://bucket/prefix``), through boto3.

Credentials, region and endpoint come from the standard AWS configuration (environment,
profiles, instance roles; ``AWS_ENDPOINT_URL`` for MinIO, R2 and the like). The client, one
attempt per call, and a body read cut at the deadline are s3client.py's, shared with the result
tier.
"""

from __future__ import annotations

from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError
from urllib3.exceptions import HTTPError, TimeoutError

from ..errors import SourceTooLarge
from ..s3client import Client, Overdue, Overlong, read_within
from .remote import Fetched, Missing, UpstreamError


class S3Upstream:
    def __init__(self, location: str, timeout: float) -> None:
        self.bucket, _, self.prefix = location.partition("/")
        self.name = f"s3://{location}"
        self._s3 = Client(timeout)

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
            data = read_within(response["Body"], deadline, limit)
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
        except Overlong:
            raise _too_large(limit) from None
        except Overdue:
            raise UpstreamError(f"{self.name}{key}: download took too long", timeout=True) from None
        except (ConnectTimeoutError, ReadTimeoutError, TimeoutError) as error:  # botocore's, urllib3's
            raise UpstreamError(f"{self.name}: {error}", timeout=True) from None
        except (BotoCoreError, HTTPError) as error:  # refused, DNS, malformed or short answers
            raise UpstreamError(f"{self.name}: {error}") from None
        return Fetched(data, response.get("ETag", "").strip('"') or None, response.get("LastModified"))


def _too_large(limit: int) -> SourceTooLarge:
    return SourceTooLarge(f"original is over the {limit}-byte limit")

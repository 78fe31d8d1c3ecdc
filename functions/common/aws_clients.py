"""boto3 clients created once per process (per Lambda container), on first use.

Creating a client costs tens of milliseconds and reads endpoint data from disk, so handlers must
not build one per request. Clients are cached by ``(service, endpoint, region)``: in the cloud that
is one client per service for the container's life; on one machine ``AWS_ENDPOINT_URL`` points every
client at the moto server, and a test that points it somewhere else gets a fresh client rather than
a stale one aimed at the old endpoint.

boto3 clients are thread-safe once created; creating them is not (the default session is shared),
hence the lock.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

#: Retries for throttling and 5xx happen inside botocore ("standard" mode, jittered backoff);
#: anything still failing surfaces to the handler, which lets SQS retry the message.
_MAX_ATTEMPTS = 3
_CONNECT_TIMEOUT_SECONDS = 5
_READ_TIMEOUT_SECONDS = 60

_creation_lock = threading.Lock()


def endpoint_url() -> str | None:
    """The endpoint every client talks to: ``AWS_ENDPOINT_URL`` (moto locally), else AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


def region_name() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@cache
def _client(service: str, endpoint: str | None, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": _MAX_ATTEMPTS, "mode": "standard"},
        connect_timeout=_CONNECT_TIMEOUT_SECONDS,
        read_timeout=_READ_TIMEOUT_SECONDS,
        # Pre-signed URLs for objects in KMS-encrypted buckets must be SigV4: S3 refuses SigV2
        # URLs for SSE-KMS objects, and botocore may still pick SigV2 when presigning for S3.
        signature_version="s3v4" if service == "s3" else None,
    )
    with _creation_lock:
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint,
            region_name=region,
            config=config,
        )


def s3_client() -> S3Client:
    client: S3Client = _client("s3", endpoint_url(), region_name())
    return client


def sqs_client() -> SQSClient:
    client: SQSClient = _client("sqs", endpoint_url(), region_name())
    return client


def dynamodb_client() -> DynamoDBClient:
    client: DynamoDBClient = _client("dynamodb", endpoint_url(), region_name())
    return client


def forget_clients() -> None:
    """Drop every cached client (a test that changes credentials, not just the endpoint)."""
    _client.cache_clear()

"""A freshly provisioned stack on the session's moto server, and helpers to drive the batch handler.

Each test gets its own stack name, so buckets, queue and idempotency table start empty and no test
sees another's objects or idempotency records. Events are the real notifications moto's S3 sent to
the real queue, received over HTTP and shaped exactly as the local poller (and Lambda) shapes them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from edgescribe.local.lambda_context import LocalLambdaContext
from edgescribe.local.poller import lambda_sqs_event
from edgescribe.local.stack import ProvisionedStack, provision_stack
from edgescribe.settings import ResourceNames

if TYPE_CHECKING:
    import pytest
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from edgescribe.local.moto_server import MotoServer


@dataclass
class BatchStack:
    names: ResourceNames
    resources: ProvisionedStack
    s3: S3Client
    sqs: SQSClient
    dynamodb: DynamoDBClient
    #: The ``s3:TestEvent`` S3 sent when the notification was configured (drained from the queue).
    test_event_message: MessageTypeDef

    def upload(self, key: str, body: bytes) -> str:
        """Put ``body`` at ``key`` in the recordings bucket; returns the ETag (unquoted)."""
        etag = self.s3.put_object(Bucket=self.names.recordings_bucket, Key=key, Body=body)["ETag"]
        return etag.strip('"')

    def receive(self, count: int) -> list[MessageTypeDef]:
        """Exactly ``count`` messages from the transcription queue (fails if fewer arrive)."""
        messages: list[MessageTypeDef] = []
        for _ in range(10):
            if len(messages) >= count:
                break
            response = self.sqs.receive_message(
                QueueUrl=self.resources.queue_url,
                MaxNumberOfMessages=min(10, count - len(messages)),
                WaitTimeSeconds=1,
                VisibilityTimeout=60,
                AttributeNames=["All"],
            )
            messages.extend(response.get("Messages", []))
        assert len(messages) == count, f"expected {count} messages, got {len(messages)}"
        return messages

    def event(self, messages: list[MessageTypeDef]) -> dict[str, Any]:
        return lambda_sqs_event(
            messages, queue_arn=self.resources.queue_arn, region=self.resources.region
        )

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        from functions.batch_transcription import handler

        response: dict[str, Any] = dict(handler(event, LocalLambdaContext()))
        return response

    def object_keys(self, prefix: str = "") -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.names.transcripts_bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.names.transcripts_bucket, Key=key)["Body"].read()

    def read_json(self, key: str) -> Any:
        return json.loads(self.read(key))

    def versions(self, key: str) -> int:
        """How many times ``key`` was written (the transcripts bucket is versioned)."""
        listing = self.s3.list_object_versions(Bucket=self.names.transcripts_bucket, Prefix=key)
        return sum(1 for version in listing.get("Versions", []) if version["Key"] == key)

    def idempotency_items(self) -> list[dict[str, Any]]:
        table = self.names.idempotency_table
        return list(self.dynamodb.scan(TableName=table).get("Items", []))


def provision_batch_stack(server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> BatchStack:
    """Provision a new stack and point this process's function environment at it."""
    import boto3

    names = ResourceNames(stack=f"t{uuid.uuid4().hex[:12]}")
    resources = provision_stack(server.endpoint_url, names)
    for variable, value in names.as_environment().items():
        monkeypatch.setenv(variable, value)
    session = boto3.session.Session()
    s3 = session.client("s3", endpoint_url=server.endpoint_url)
    sqs = session.client("sqs", endpoint_url=server.endpoint_url)
    dynamodb = session.client("dynamodb", endpoint_url=server.endpoint_url)
    first = sqs.receive_message(QueueUrl=resources.queue_url, WaitTimeSeconds=1)["Messages"][0]
    assert json.loads(first["Body"]).get("Event") == "s3:TestEvent"
    sqs.delete_message(QueueUrl=resources.queue_url, ReceiptHandle=first["ReceiptHandle"])
    return BatchStack(
        names=names,
        resources=resources,
        s3=s3,
        sqs=sqs,
        dynamodb=dynamodb,
        test_event_message=first,
    )


def altered(message: MessageTypeDef, **fields: str) -> MessageTypeDef:
    """A copy of a received message with some fields replaced (a forged or duplicated delivery)."""
    return cast("MessageTypeDef", {**message, **fields})


def emitted_metrics(output: str) -> dict[str, float]:
    """Sum of every metric the handler flushed as CloudWatch EMF on stdout."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                values = value if isinstance(value, list) else [value]
                totals[metric["Name"]] = totals.get(metric["Name"], 0.0) + sum(values)
    return totals

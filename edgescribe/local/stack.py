"""Provision the cloud's resources on a moto endpoint: the same names and shape ``pulumi up`` makes.

Creates, for one ``ResourceNames``:
- buckets: recordings, transcripts, models, feedback — versioned, encrypted, public access blocked;
- the transcription queue and its dead-letter queue, with a redrive policy of
  ``settings.MAX_RECEIVE_COUNT`` receives;
- the recordings bucket's notification: every ``s3:ObjectCreated:*`` under ``recordings/`` → queue;
- DynamoDB tables from ``settings.TABLE_KEYS`` (on-demand, TTL where the schema has one).

Idempotent: provisioning an existing stack again changes nothing and fails on nothing, so
``local up`` can be rerun against a server that is already set up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from edgescribe import settings
from edgescribe.local.moto_server import FAKE_CREDENTIALS
from edgescribe.settings import ResourceNames

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

#: Prefix of the keys that trigger transcription (``storage_layout.recording_key``'s prefix).
RECORDINGS_PREFIX = "recordings/"
#: How long a received message stays invisible: at least the function's timeout (AWS requires it).
QUEUE_VISIBILITY_TIMEOUT_SECONDS = 900
QUEUE_RETENTION_SECONDS = 4 * 24 * 60 * 60
DLQ_RETENTION_SECONDS = 14 * 24 * 60 * 60


@dataclass(frozen=True)
class ProvisionedStack:
    """What was created, with the URLs and ARNs callers need."""

    endpoint_url: str
    region: str
    names: ResourceNames
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str

    @property
    def buckets(self) -> tuple[str, ...]:
        return _bucket_names(self.names)

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(getattr(self.names, field) for field in settings.TABLE_KEYS)


def provision_stack(
    endpoint_url: str, names: ResourceNames, *, region: str = "us-east-1"
) -> ProvisionedStack:
    """Create (or confirm) every resource of ``names`` on ``endpoint_url``."""
    s3: S3Client = _client("s3", endpoint_url, region)
    sqs: SQSClient = _client("sqs", endpoint_url, region)
    dynamodb: DynamoDBClient = _client("dynamodb", endpoint_url, region)

    for bucket in _bucket_names(names):
        _ensure_bucket(s3, bucket, region)
    dlq_url, dlq_arn = _ensure_queue(
        sqs, names.transcription_dlq, {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
    )
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.MAX_RECEIVE_COUNT}
    queue_url, queue_arn = _ensure_queue(
        sqs,
        names.transcription_queue,
        {
            "VisibilityTimeout": str(QUEUE_VISIBILITY_TIMEOUT_SECONDS),
            "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
    )
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={"Policy": json.dumps(_s3_may_send(queue_arn, names.recordings_bucket))},
    )
    _ensure_notification(s3, names.recordings_bucket, queue_arn)
    for field, keys in settings.TABLE_KEYS.items():
        _ensure_table(dynamodb, getattr(names, field), keys)
    return ProvisionedStack(
        endpoint_url=endpoint_url,
        region=region,
        names=names,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
    )


def _bucket_names(names: ResourceNames) -> tuple[str, ...]:
    return (
        names.recordings_bucket,
        names.transcripts_bucket,
        names.models_bucket,
        names.feedback_bucket,
    )


def _client(service: str, endpoint_url: str, region: str) -> Any:
    """A client bound to ``endpoint_url`` with moto's fake credentials: never real AWS."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    ).client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def _ensure_bucket(s3: S3Client, bucket: str, region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(
                Bucket=bucket,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _ensure_queue(sqs: SQSClient, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """Create the queue or bring an existing one's attributes to ``attributes``."""
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "QueueAlreadyExists",
            "QueueNameExists",
        ):
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _s3_may_send(queue_arn: str, bucket: str) -> dict[str, Any]:
    """Queue policy: only S3, and only for this bucket, may send (what infra attaches too)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "RecordingsBucketNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }


def _ensure_notification(s3: S3Client, bucket: str, queue_arn: str) -> None:
    """Set the notification unless it is already exactly this (setting it sends a test event)."""
    wanted = {
        "Id": "recordings-to-transcription-queue",
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": RECORDINGS_PREFIX}]}},
    }
    current = s3.get_bucket_notification_configuration(Bucket=bucket).get("QueueConfigurations", [])
    if any(
        config.get("QueueArn") == queue_arn and config.get("Id") == wanted["Id"]
        for config in current
    ):
        return
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [wanted]},  # type: ignore[list-item]
    )


def _ensure_table(dynamodb: DynamoDBClient, table: str, keys: settings.TableKeys) -> None:
    key_schema: list[Any] = [{"AttributeName": keys.partition_key, "KeyType": "HASH"}]
    attributes: list[Any] = [{"AttributeName": keys.partition_key, "AttributeType": "S"}]
    if keys.sort_key:
        key_schema.append({"AttributeName": keys.sort_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": keys.sort_key, "AttributeType": "S"})
    try:
        dynamodb.create_table(
            TableName=table,
            KeySchema=key_schema,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    if keys.ttl_attribute:
        status = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if status.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": keys.ttl_attribute},
            )

"""IAM and resource-policy documents, built from plain strings.

Pure functions (no Pulumi): a component resolves the ARNs it needs with ``Output.all(...).apply`` and
hands them here, so each document is easy to read and easy to test on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

PolicyDocument = dict[str, Any]
Statement = dict[str, Any]

_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repository>[a-z0-9._/-]+?)(:[A-Za-z0-9_.-]+|@sha256:[0-9a-f]{64})$"
)


def is_ecr_image(image_uri: str) -> bool:
    return _ECR_IMAGE.match(image_uri) is not None


def ecr_repository_arn(image_uri: str, partition: str) -> str:
    """The ECR repository ARN behind an image URI (to scope an execution role's pull rights)."""
    match = _ECR_IMAGE.match(image_uri)
    if match is None:
        raise ValueError(f"{image_uri!r} is not an ECR image URI")
    return (
        f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"
    )


def policy_document(statements: Iterable[Statement]) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def to_json(document: PolicyDocument) -> str:
    """Stable JSON (sorted keys), so an unchanged policy never shows as a diff."""
    return json.dumps(document, sort_keys=True)


def assume_role_policy(service: str, *, source_account: str | None = None) -> PolicyDocument:
    """Trust policy letting one AWS service assume a role (optionally only for our account)."""
    statement: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return policy_document([statement])


def deny_insecure_transport(resources: Sequence[str], service_prefix: str) -> Statement:
    """The statement that makes a resource TLS-only: any request over plain HTTP is denied."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": f"{service_prefix}:*",
        "Resource": list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def tls_only_bucket_policy(bucket_arn: str, extra: Iterable[Statement] = ()) -> PolicyDocument:
    """Bucket policy: deny non-TLS requests to the bucket and every object in it."""
    return policy_document([deny_insecure_transport([bucket_arn, f"{bucket_arn}/*"], "s3"), *extra])


def s3_notification_queue_policy(
    queue_arn: str, bucket_arn: str, account_id: str
) -> PolicyDocument:
    """Queue policy: only our recordings bucket (in our account) may send S3 events; TLS only."""
    return policy_document(
        [
            deny_insecure_transport([queue_arn], "sqs"),
            {
                "Sid": "RecordingsBucketNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": bucket_arn},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
        ]
    )


def tls_only_queue_policy(queue_arn: str, extra: Iterable[Statement] = ()) -> PolicyDocument:
    return policy_document([deny_insecure_transport([queue_arn], "sqs"), *extra])

"""Provisioning the local stack: the resources, their shape, and that doing it twice is harmless."""

from __future__ import annotations

import json

from edgescribe import settings
from edgescribe.local.moto_server import MotoServer
from edgescribe.local.stack import provision_stack
from tests.functions.batch_stack import BatchStack


def test_provisioning_again_changes_nothing_and_fails_on_nothing(
    aws_env: MotoServer, provisioned: BatchStack
) -> None:
    again = provision_stack(aws_env.endpoint_url, provisioned.names)

    assert again == provisioned.resources
    # Re-provisioning does not re-send the notification's s3:TestEvent (nor anything else).
    assert (
        provisioned.sqs.receive_message(QueueUrl=again.queue_url, WaitTimeSeconds=0).get(
            "Messages", []
        )
        == []
    )


def test_queue_redrives_to_the_dlq_after_max_receive_count(provisioned: BatchStack) -> None:
    attributes = provisioned.sqs.get_queue_attributes(
        QueueUrl=provisioned.resources.queue_url, AttributeNames=["RedrivePolicy"]
    )["Attributes"]

    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": provisioned.resources.dlq_arn,
        "maxReceiveCount": settings.MAX_RECEIVE_COUNT,
    }


def test_only_uploads_under_recordings_prefix_are_queued(provisioned: BatchStack) -> None:
    provisioned.upload("elsewhere/a.wav", b"x")
    provisioned.upload("recordings/acme/a.wav", b"x")

    [message] = provisioned.receive(1)
    assert (
        "recordings%2Facme%2Fa.wav" in message["Body"] or "recordings/acme/a.wav" in message["Body"]
    )
    assert (
        provisioned.sqs.receive_message(
            QueueUrl=provisioned.resources.queue_url, WaitTimeSeconds=0
        ).get("Messages", [])
        == []
    )


def test_tables_have_the_shared_key_schema_and_ttl(provisioned: BatchStack) -> None:
    for field, keys in settings.TABLE_KEYS.items():
        table = getattr(provisioned.names, field)
        description = provisioned.dynamodb.describe_table(TableName=table)["Table"]
        schema = {item["AttributeName"]: item["KeyType"] for item in description["KeySchema"]}
        expected = {keys.partition_key: "HASH"}
        if keys.sort_key:
            expected[keys.sort_key] = "RANGE"
        assert schema == expected, table
        ttl = provisioned.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if keys.ttl_attribute:
            assert ttl["TimeToLiveStatus"] == "ENABLED"
            assert ttl["AttributeName"] == keys.ttl_attribute
        else:
            assert ttl["TimeToLiveStatus"] == "DISABLED"


def test_buckets_are_versioned_encrypted_and_private(provisioned: BatchStack) -> None:
    s3 = provisioned.s3
    for bucket in provisioned.resources.buckets:
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
            "Rules"
        ]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())

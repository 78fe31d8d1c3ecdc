"""Buckets and queues: named by settings, configured as documented, and wired S3 → SQS → DLQ."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from edgescribe.settings import MAX_RECEIVE_COUNT, ResourceNames
from infra import access
from infra.catalog import function_spec
from models.runtime import storage_layout
from tests.infra.harness import BASE_CONFIG, DeployedStack, deploy

BUCKET = "aws:s3/bucket:Bucket"
QUEUE = "aws:sqs/queue:Queue"


def test_buckets_and_queues_carry_the_settings_names(sagemaker_stack: DeployedStack) -> None:
    names = ResourceNames(stack=sagemaker_stack.stack)
    buckets = {b.state["bucket"] for b in sagemaker_stack.of_type(BUCKET)}
    assert buckets == {
        names.recordings_bucket,
        names.transcripts_bucket,
        names.models_bucket,
        names.feedback_bucket,
    }
    queues = {q.state["name"] for q in sagemaker_stack.of_type(QUEUE)}
    assert {names.transcription_queue, names.transcription_dlq} <= queues
    tables = {t.state["name"] for t in sagemaker_stack.of_type("aws:dynamodb/table:Table")}
    assert tables == {names.idempotency_table, names.jobs_table, names.devices_table}


def test_key_prefixes_used_by_policies_match_the_storage_layout() -> None:
    when = datetime(2026, 11, 25, tzinfo=UTC)
    assert storage_layout.recording_key("t", "r", "wav").startswith(access.RECORDINGS)
    assert storage_layout.transcript_key("t", "r").startswith(access.TRANSCRIPTS)
    assert storage_layout.error_key("t", "r").startswith(access.ERRORS)
    assert storage_layout.shadow_transcript_key("t", "r", 2).startswith(access.SHADOW)
    assert storage_layout.model_key("edgescribe-edge", 3).startswith(access.MODELS)
    assert storage_layout.channel_key("canary").startswith(access.CHANNELS)
    assert storage_layout.channel_history_key("stable", when).startswith(access.CHANNELS)
    assert storage_layout.triton_repository_prefix("edgescribe-cloud").startswith(access.TRITON)
    assert storage_layout.feedback_key("f1", when).startswith(access.FEEDBACK)
    assert storage_layout.ASSESSMENTS_PREFIX == access.ASSESSMENTS
    assert storage_layout.assessment_key("f1").startswith(access.ASSESSMENTS)
    assert storage_layout.TRAINING_PREFIX == access.TRAINING
    assert storage_layout.training_job_key("retrain-x", "job.json").startswith(access.TRAINING_JOBS)
    assert storage_layout.TRAINING_JOBS_PREFIX == access.TRAINING_JOBS
    assert storage_layout.candidate_prefix("retrain-x").startswith(access.TRAINING)
    assert storage_layout.checkpoint_key("edgescribe-edge", 3).startswith(access.TRAINING)


def _lifecycle(stack: DeployedStack, bucket_name: str) -> list[dict[str, Any]]:
    (lifecycle,) = stack.referencing(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "bucket", bucket_name
    )
    rules: list[dict[str, Any]] = lifecycle.inputs["rules"]
    return rules


def test_raw_recordings_expire_after_the_configured_days() -> None:
    stack = deploy({**BASE_CONFIG, "recordingRetentionDays": "9"}, stack="retention")
    names = ResourceNames(stack="retention")
    rules = {rule["id"]: rule for rule in _lifecycle(stack, names.recordings_bucket)}
    expiry = rules["expire-raw-recordings"]
    assert expiry["status"] == "Enabled"
    assert expiry["filter"] == {"prefix": access.RECORDINGS}
    assert expiry["expiration"] == {"days": 9}
    # Transcripts, models and feedback are kept (no current-version expiry) unless configured.
    for bucket in (names.transcripts_bucket, names.models_bucket, names.feedback_bucket):
        assert not any(
            "days" in (rule.get("expiration") or {}) for rule in _lifecycle(stack, bucket)
        )


def test_every_bucket_expires_old_versions_and_abandoned_uploads(
    sagemaker_stack: DeployedStack,
) -> None:
    for bucket in sagemaker_stack.of_type(BUCKET):
        rules = _lifecycle(sagemaker_stack, bucket.state["bucket"])
        noncurrent = [r for r in rules if r.get("noncurrentVersionExpiration")]
        assert noncurrent, bucket.state["bucket"]
        assert noncurrent[0]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
        assert noncurrent[0]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}


def test_transcript_expiry_is_opt_in() -> None:
    stack = deploy({**BASE_CONFIG, "transcriptRetentionDays": "400"}, stack="keep")
    rules = {r["id"]: r for r in _lifecycle(stack, ResourceNames(stack="keep").transcripts_bucket)}
    assert rules["expire-transcripts"]["expiration"] == {"days": 400}
    assert rules["expire-transcripts"]["filter"] == {"prefix": access.TRANSCRIPTS}


def test_new_recordings_notify_the_transcription_queue(sagemaker_stack: DeployedStack) -> None:
    names = ResourceNames(stack=sagemaker_stack.stack)
    queue = sagemaker_stack.named(QUEUE, names.transcription_queue)
    (notification,) = sagemaker_stack.of_type("aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs["bucket"] == names.recordings_bucket
    (target,) = notification.inputs["queues"]
    assert target["queueArn"] == queue.state["arn"]
    assert target["events"] == ["s3:ObjectCreated:*"]
    assert target["filterPrefix"] == access.RECORDINGS
    # Only the recordings bucket, in this account, may send to the queue.
    (policy,) = sagemaker_stack.referencing(
        "aws:sqs/queuePolicy:QueuePolicy", "queueUrl", queue.state["url"]
    )
    allows = [s for s in policy.policy()["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allows[0]["Action"] == "sqs:SendMessage"
    assert allows[0]["Condition"]["ArnEquals"]["aws:SourceArn"] == (
        f"arn:aws:s3:::{names.recordings_bucket}"
    )
    assert allows[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_failed_messages_move_to_the_dead_letter_queue_after_max_receives(
    sagemaker_stack: DeployedStack,
) -> None:
    names = ResourceNames(stack=sagemaker_stack.stack)
    queue = sagemaker_stack.named(QUEUE, names.transcription_queue)
    dead_letters = sagemaker_stack.named(QUEUE, names.transcription_dlq)
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": dead_letters.state["arn"],
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }
    (allow,) = sagemaker_stack.of_type("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy")
    assert allow.inputs["queueUrl"] == dead_letters.state["url"]
    assert json.loads(allow.inputs["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [queue.state["arn"]],
    }


def test_a_message_is_never_visible_while_its_invocation_may_still_run(
    sagemaker_stack: DeployedStack,
) -> None:
    queue = sagemaker_stack.named(
        QUEUE, ResourceNames(stack=sagemaker_stack.stack).transcription_queue
    )
    timeout = function_spec("batch-transcription").timeout_seconds
    assert queue.inputs["visibilityTimeoutSeconds"] >= 6 * timeout
    assert queue.inputs["messageRetentionSeconds"] == 14 * 24 * 3600


def test_queue_alarms_watch_dead_letters_and_waiting_recordings() -> None:
    stack = deploy({**BASE_CONFIG, "oldestMessageAlarmSeconds": "900"}, stack="alarms")
    names = ResourceNames(stack="alarms")
    alarms = stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    waiting = [
        a
        for a in alarms
        if a.inputs["dimensions"] == {"QueueName": names.transcription_queue}
        and a.inputs["metricName"] == "ApproximateAgeOfOldestMessage"
    ]
    assert [a.inputs["threshold"] for a in waiting] == [900]
    depth = [
        a
        for a in alarms
        if a.inputs["dimensions"] == {"QueueName": names.transcription_dlq}
        and a.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
    ]
    assert len(depth) == 1
    assert depth[0].inputs["threshold"] == 1

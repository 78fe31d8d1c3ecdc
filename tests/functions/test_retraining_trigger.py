"""The retraining-trigger Lambda handler on the real moto server (S3 + SageMaker over HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgescribe.local.lambda_context import LocalLambdaContext
from functions.learning.launchers import sagemaker_client
from functions.retraining_trigger import InvalidTriggerEventError, handler, parse_event
from tests.functions.batch_stack import BatchStack
from tests.functions.learning.feedback_data import (
    RANDOM_TEXTS,
    feedback_record,
    honest_records,
    publish_stable,
    put_feedback,
)

SCHEDULED = {"source": "edgescribe.schedule", "schedule": "retraining"}
EVENTBRIDGE_RULE = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-25T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/retraining"],
    "detail": {},
}


@pytest.fixture
def trigger_stack(batch_stack: BatchStack, monkeypatch: pytest.MonkeyPatch) -> BatchStack:
    """A stack with a stable model, configured for SageMaker training (moto's SageMaker)."""
    publish_stable(batch_stack)
    prefix = f"edgescribe-{batch_stack.names.stack}"
    for variable, value in {
        "EDGESCRIBE_TRAINING_IMAGE_URI": "000000000000.dkr.ecr.us-east-1.amazonaws.com/train:1",
        "EDGESCRIBE_TRAINING_ROLE_ARN": f"arn:aws:iam::000000000000:role/{prefix}-training-role",
        "EDGESCRIBE_TRAINING_OUTPUT_URI": f"s3://{batch_stack.names.models_bucket}/training/",
        "EDGESCRIBE_TRAINING_INSTANCE_TYPE": "ml.g5.xlarge",
        "EDGESCRIBE_TRAINING_JOB_PREFIX": prefix,
        "EDGESCRIBE_RETRAIN_MIN_CORRECTIONS": "5",
        # One window per year: two invocations in a test never straddle a window boundary.
        "EDGESCRIBE_RETRAIN_WINDOW_FORMAT": "%Y",
    }.items():
        monkeypatch.setenv(variable, value)
    return batch_stack


def _invoke(event: Any) -> dict[str, Any]:
    summary: dict[str, Any] = handler(
        event, LocalLambdaContext(function_name="edgescribe-t-retraining-trigger")
    )
    json.dumps(summary)  # what Lambda returns must be JSON
    return summary


def _feed(stack: BatchStack, *records: Any) -> None:
    for record in records:
        put_feedback(stack.s3, stack.names.feedback_bucket, record)


def _training_jobs(prefix: str) -> list[str]:
    listed = sagemaker_client().list_training_jobs(NameContains=prefix)
    return [job["TrainingJobName"] for job in listed["TrainingJobSummaries"]]


@pytest.mark.parametrize("event", [SCHEDULED, EVENTBRIDGE_RULE, {}, {"action": "run"}])
def test_a_scheduled_run_ingests_decides_and_starts_one_sagemaker_job(
    trigger_stack: BatchStack, event: dict[str, Any]
) -> None:
    _feed(trigger_stack, *honest_records(6), feedback_record(50, corrected=RANDOM_TEXTS[0]))

    summary = _invoke(event)

    assert summary["action"] == "run"
    assert summary["ingest"]["accepted"] == 6
    assert summary["ingest"]["rejected"] == 1
    assert summary["decision"]["start"] is True
    job = summary["job"]
    prefix = f"edgescribe-{trigger_stack.names.stack}"
    assert job["runner"] == f"sagemaker:{prefix}-{job['job_id']}"
    assert _training_jobs(prefix) == [f"{prefix}-{job['job_id']}"]

    again = _invoke(SCHEDULED)  # same window: moto's job "completed" without a report
    assert again["job"] is None
    assert again["decision"]["start"] is False
    assert job["job_id"] in again["settled"]
    assert _training_jobs(prefix) == [f"{prefix}-{job['job_id']}"]


def test_ingest_only_assesses_and_never_starts_a_job(trigger_stack: BatchStack) -> None:
    _feed(trigger_stack, *honest_records(6))
    summary = _invoke({"action": "ingest"})
    assert summary["ingest"]["assessed"] == 6
    assert summary["decision"] is None
    assert summary["job"] is None
    assert _training_jobs(f"edgescribe-{trigger_stack.names.stack}") == []


def test_force_starts_a_job_below_the_threshold(trigger_stack: BatchStack) -> None:
    _feed(trigger_stack, *honest_records(2))
    assert _invoke(SCHEDULED)["job"] is None
    summary = _invoke({"force": True})
    assert summary["decision"]["forced"] is True
    assert summary["job"] is not None


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ("run", "expected a JSON object"),
        (["run"], "expected a JSON object"),
        ({"action": "train"}, "action"),
        ({"force": "yes"}, "force"),
        ({"force": 1}, "force"),
        ({"action": "ingest", "force": True}, "force applies to action 'run'"),
        ({"actoin": "run"}, "actoin"),
    ],
)
def test_a_malformed_event_fails_visibly_naming_the_problem(event: Any, problem: str) -> None:
    with pytest.raises(InvalidTriggerEventError, match=problem):
        parse_event(event)


def test_a_malformed_event_reaches_no_storage(trigger_stack: BatchStack) -> None:
    _feed(trigger_stack, *honest_records(6))
    with pytest.raises(InvalidTriggerEventError):
        _invoke({"action": "delete-everything"})
    listing = trigger_stack.s3.list_objects_v2(
        Bucket=trigger_stack.names.feedback_bucket, Prefix="assessments/"
    )
    assert listing.get("KeyCount", 0) == 0

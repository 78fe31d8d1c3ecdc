"""Job records in S3 against the real moto server: created once per window, never lost to a
concurrent update, never changed after they end."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from functions.learning.job_store import (
    CorruptJobRecordError,
    JobNotFoundError,
    JobStatusConflictError,
    JobStore,
    JobUpdateConflictError,
)
from functions.learning.records import JobRecord, JobStatus
from models.runtime import storage_layout
from models.runtime.transcript import ModelRef
from tests.functions.batch_stack import BatchStack
from tests.functions.learning.feedback_data import versions

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _job(window: str, status: JobStatus = "started", *, hours: int = 0) -> JobRecord:
    when = T0 + timedelta(hours=hours)
    return JobRecord(
        job_id=f"retrain-{window}", status=status, window=window, created_at=when, updated_at=when
    )


@pytest.fixture
def store(batch_stack: BatchStack) -> JobStore:
    return JobStore(batch_stack.s3, batch_stack.names.models_bucket, clock=lambda: T0)


def test_a_window_gets_one_job_the_second_create_loses_and_changes_nothing(
    store: JobStore, batch_stack: BatchStack
) -> None:
    assert store.create(_job("20261125T12").model_copy(update={"detail": "first"}))
    assert not store.create(_job("20261125T12").model_copy(update={"detail": "second"}))
    found = store.get("retrain-20261125T12")
    assert found is not None
    assert found[0].detail == "first"
    key = storage_layout.training_job_key("retrain-20261125T12", "job.json")
    assert versions(batch_stack.s3, batch_stack.names.models_bucket, key) == 1


def test_update_changes_what_it_is_given_and_keeps_the_rest(store: JobStore) -> None:
    store.create(_job("20261125T12").model_copy(update={"detail": "50 new corrections"}))
    store.update("retrain-20261125T12", "started", runner="local:42")
    candidate = ModelRef(name="edgescribe-edge", version=2)
    updated = store.update("retrain-20261125T12", "trained", candidate=candidate)
    assert updated.runner == "local:42"
    assert updated.detail == "50 new corrections"
    assert updated.candidate == candidate
    found = store.get("retrain-20261125T12")
    assert found is not None
    assert found[0] == updated


def test_a_stale_caller_cannot_overwrite_a_job_that_moved_on(store: JobStore) -> None:
    store.create(_job("20261125T12"))
    store.update("retrain-20261125T12", "trained")
    with pytest.raises(JobStatusConflictError, match="is 'trained', not 'started'") as caught:
        store.update("retrain-20261125T12", "failed", expected_status="started")
    assert caught.value.current.status == "trained"
    found = store.get("retrain-20261125T12")
    assert found is not None
    assert found[0].status == "trained"


@pytest.mark.parametrize("final", ["gate_failed", "stable", "rejected", "failed"])
def test_an_ended_job_never_changes_again(store: JobStore, final: JobStatus) -> None:
    store.create(_job("20261125T12", final))
    with pytest.raises(JobStatusConflictError, match="already ended"):
        store.update("retrain-20261125T12", "started", runner="local:1")


def test_updating_a_job_that_does_not_exist_says_so(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError, match="retrain-nope"):
        store.update("retrain-nope", "failed")


def test_concurrent_updates_are_serialized_none_is_lost(
    store: JobStore, batch_stack: BatchStack
) -> None:
    store.create(_job("20261125T12"))
    barrier = threading.Barrier(6)
    succeeded: list[str] = []
    gave_up: list[str] = []

    def update(number: int) -> None:
        barrier.wait()
        try:
            store.update("retrain-20261125T12", "started", detail=f"writer {number}")
            succeeded.append(f"writer {number}")
        except JobUpdateConflictError:
            gave_up.append(f"writer {number}")

    threads = [threading.Thread(target=update, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(succeeded) + len(gave_up) == 6
    assert succeeded
    key = storage_layout.training_job_key("retrain-20261125T12", "job.json")
    # Every successful update is its own version: none replaced another unseen.
    assert versions(batch_stack.s3, batch_stack.names.models_bucket, key) == 1 + len(succeeded)
    found = store.get("retrain-20261125T12")
    assert found is not None
    assert found[0].detail in succeeded


def test_list_jobs_is_newest_first_and_active_excludes_ended_jobs(
    store: JobStore, batch_stack: BatchStack
) -> None:
    store.create(_job("20261125T10", "gate_failed", hours=-2))
    store.create(_job("20261125T11", "shadow", hours=-1))
    store.create(_job("20261125T12", "started"))
    # A claimed window whose start never finished: a folder without a job record.
    store.put_file("retrain-20261125T13", "spec.json", b"{}", create_only=True)
    # A folder nobody of ours made, under a name that is not a job id.
    batch_stack.s3.put_object(
        Bucket=batch_stack.names.models_bucket, Key="training/jobs/..%2f/job.json", Body=b"{}"
    )

    listed = store.list_jobs()
    assert [job.job_id for job in listed] == [
        "retrain-20261125T12",
        "retrain-20261125T11",
        "retrain-20261125T10",
    ]
    assert [job.job_id for job in store.list_jobs(limit=1)] == ["retrain-20261125T12"]
    assert [job.job_id for job in store.active()] == ["retrain-20261125T12", "retrain-20261125T11"]


def test_a_corrupt_job_record_is_reported_not_taken_for_no_job(
    store: JobStore, batch_stack: BatchStack
) -> None:
    key = storage_layout.training_job_key("retrain-20261125T12", "job.json")
    batch_stack.s3.put_object(Bucket=batch_stack.names.models_bucket, Key=key, Body=b"{oops")
    with pytest.raises(CorruptJobRecordError, match="retrain-20261125T12"):
        store.get("retrain-20261125T12")


def test_job_files_are_create_only_when_asked(store: JobStore) -> None:
    assert store.put_file("retrain-x", "spec.json", b"1", create_only=True)
    assert not store.put_file("retrain-x", "spec.json", b"2", create_only=True)
    assert store.read_file("retrain-x", "spec.json") == b"1"
    assert store.put_file("retrain-x", "finetune.jsonl", b"a\n", create_only=False)
    assert store.put_file("retrain-x", "finetune.jsonl", b"b\n", create_only=False)
    assert store.read_file("retrain-x", "finetune.jsonl") == b"b\n"
    assert store.read_file("retrain-x", "gate.json") is None
    with pytest.raises(storage_layout.InvalidKeyError):
        store.put_file("retrain-x", "../../models/channels/stable.json", b"{}", create_only=False)

"""The retraining trigger against the real moto server, launching a real (recording) process."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from functions.api.schemas import FeedbackRecord
from functions.learning.job_store import JobStore
from functions.learning.launchers import LauncherError, LocalProcessLauncher
from functions.learning.records import Assessment, JobRecord, TrainingExample, TrainingJobSpec
from functions.learning.trigger import (
    TriggerConfigurationError,
    TriggerPolicy,
    TriggerRun,
    run_trigger,
    split_domain_eval,
)
from models.runtime import storage_layout
from models.runtime.transcript import ModelRef
from tests.functions.batch_stack import BatchStack
from tests.functions.learning.feedback_data import (
    RANDOM_TEXTS,
    T0,
    feedback_record,
    honest_records,
    publish_manifest,
    publish_stable,
    put_feedback,
    versions,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=UTC)
NEXT_WINDOW = NOW + timedelta(hours=1)
POLICY = TriggerPolicy(min_new_corrections=5, min_drift_samples=4, drift_cer=0.35)


@dataclass
class Loop:
    """A stack with a stable model and a launcher whose 'training' records how it was started."""

    stack: BatchStack
    record: Path
    release: Path
    launcher: LocalProcessLauncher

    @property
    def s3(self) -> S3Client:
        return self.stack.s3

    @property
    def jobs(self) -> JobStore:
        return JobStore(self.stack.s3, self.stack.names.models_bucket)

    def feed(self, *records: FeedbackRecord) -> None:
        for record in records:
            put_feedback(self.stack.s3, self.stack.names.feedback_bucket, record)

    def run(
        self,
        now: datetime = NOW,
        *,
        policy: TriggerPolicy = POLICY,
        force: bool = False,
        launcher: LocalProcessLauncher | None = None,
    ) -> TriggerRun:
        names = self.stack.names
        return run_trigger(
            self.stack.s3,
            feedback_bucket=names.feedback_bucket,
            models_bucket=names.models_bucket,
            recordings_bucket=names.recordings_bucket,
            launcher=launcher or self.launcher,
            now=now,
            policy=policy,
            force=force,
        )

    def launches(self) -> list[list[str]]:
        """The arguments of every process this loop's launcher started, once each has recorded
        them (a launch does not wait for the process to get that far)."""
        started = len(self.launcher.runners)
        deadline = time.monotonic() + 60
        while True:
            lines = self._recorded()
            if len(lines) >= started or time.monotonic() > deadline:
                return [json.loads(line)["argv"] for line in lines]
            time.sleep(0.05)

    def _recorded(self) -> list[str]:
        if not self.record.exists():
            return []
        return self.record.read_text(encoding="utf-8").splitlines()

    def training_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(
            Bucket=self.stack.names.models_bucket, Prefix=storage_layout.TRAINING_JOBS_PREFIX
        )
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def examples(self, job_id: str, filename: str) -> list[TrainingExample]:
        body = self.jobs.read_file(job_id, filename)
        if body is None:
            return []
        return [TrainingExample.model_validate_json(line) for line in body.splitlines()]

    def spec(self, job_id: str) -> TrainingJobSpec:
        body = self.jobs.read_file(job_id, "spec.json")
        assert body is not None
        return TrainingJobSpec.model_validate_json(body)

    def job(self, job_id: str) -> JobRecord:
        found = self.jobs.get(job_id)
        assert found is not None
        return found[0]


@pytest.fixture
def loop(batch_stack: BatchStack, tmp_path: Path) -> Iterator[Loop]:
    publish_stable(batch_stack)
    record, release = tmp_path / "launches.jsonl", tmp_path / "release"
    environment = {
        **os.environ,
        "ARGV_RECORD": str(record),
        "ARGV_RECORD_HOLD": str(release),  # "training" runs until the test ends
    }
    launcher = LocalProcessLauncher(
        module="tests.functions.learning.argv_recorder", log_dir=tmp_path, environment=environment
    )
    yield Loop(stack=batch_stack, record=record, release=release, launcher=launcher)
    release.touch()
    for runner in launcher.runners:
        launcher.wait(runner, timeout=60)


def test_below_the_thresholds_no_job_is_started(loop: Loop) -> None:
    loop.feed(*honest_records(3))
    run = loop.run()
    assert run.decision is not None
    assert not run.decision.start
    assert "3 new trainable corrections (threshold 5)" in run.decision.reason
    assert run.job is None
    assert loop.training_keys() == []
    assert loop.launches() == []


def test_enough_new_corrections_start_one_job_with_its_data_manifests(loop: Loop) -> None:
    publish_manifest(loop.stack, "edgescribe-cloud", 2)
    honest = honest_records(10)
    confirmed = [
        feedback_record(20 + i, original="stop the warfarin", corrected="Stop the warfarin.")
        for i in range(2)
    ]
    no_audio = feedback_record(30, audio=False)
    poisoned = [feedback_record(40 + i, corrected=text) for i, text in enumerate(RANDOM_TEXTS)]
    loop.feed(*honest, *confirmed, no_audio, *poisoned)

    run = loop.run()

    assert run.ingest is not None
    assert run.ingest.accepted == 13
    assert run.decision is not None
    assert run.decision.start
    assert run.decision.reason == "12 new trainable corrections (threshold 5)"
    assert run.job is not None
    job_id = run.job.job_id
    assert job_id == "retrain-20261125T12"
    spec = loop.spec(job_id)
    assert spec == run.job.spec
    assert spec.base_model == ModelRef(name="edgescribe-edge", version=3)
    assert spec.teacher_model == ModelRef(name="edgescribe-cloud", version=2)
    assert spec.models_bucket == loop.stack.names.models_bucket
    finetune = loop.examples(job_id, "finetune.jsonl")
    held = loop.examples(job_id, "domain-eval.jsonl")
    distill = loop.examples(job_id, "distill.jsonl")
    assert (len(finetune), len(held), len(distill)) == (8, 2, 2)
    assert spec.counts == {"finetune": 8, "distill": 2, "domain_eval": 2, "drift_samples": 13}
    assert spec.datasets == {
        "finetune": f"training/jobs/{job_id}/finetune.jsonl",
        "distill": f"training/jobs/{job_id}/distill.jsonl",
    }
    assert spec.domain_eval == f"training/jobs/{job_id}/domain-eval.jsonl"
    by_id = {record.feedback_id: record for record in (*honest, *confirmed)}
    assert {e.feedback_id for e in (*finetune, *held, *distill)} == set(by_id)
    for example in (*finetune, *held, *distill):
        assert example.audio_bucket == loop.stack.names.recordings_bucket
        assert example.audio_key == by_id[example.feedback_id].audio_ref  # a reference, no copy
        assert example.text == by_id[example.feedback_id].corrected_text
    assert {e.route for e in distill} == {"distill"}
    job = loop.job(job_id)
    assert job.status == "started"
    assert job.runner == run.job.runner
    assert loop.launches() == [
        ["--job-id", job_id, "--models-bucket", loop.stack.names.models_bucket]
    ]


def test_two_runs_in_the_same_window_start_one_job(loop: Loop) -> None:
    loop.feed(*honest_records(6))
    first = loop.run()
    loop.feed(*honest_records(6, start=100))
    second = loop.run()

    assert first.job is not None
    assert second.job is None
    assert second.decision is not None
    assert not second.decision.start
    assert second.decision.reason == "job retrain-20261125T12 still running (status started)"
    assert len(loop.launches()) == 1
    # Once that job has ended, the window still allows no second job.
    loop.jobs.update("retrain-20261125T12", "gate_failed", detail="worse on general speech")
    third = loop.run(NOW + timedelta(minutes=20))
    assert third.decision is not None
    assert third.decision.reason == "job retrain-20261125T12 already started in this window"
    assert len(loop.launches()) == 1


def test_concurrent_runs_in_one_window_start_exactly_one_job(loop: Loop) -> None:
    loop.feed(*honest_records(8))
    runs: list[TriggerRun] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        runs.append(loop.run())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(runs) == 2
    assert sum(run.job is not None for run in runs) == 1
    assert len(loop.launches()) == 1
    key = storage_layout.training_job_key("retrain-20261125T12", "spec.json")
    assert versions(loop.s3, loop.stack.names.models_bucket, key) == 1


def test_a_job_still_in_progress_blocks_the_next_window(loop: Loop) -> None:
    loop.feed(*honest_records(6))
    loop.run()
    loop.jobs.update("retrain-20261125T12", "shadow", detail="candidate v4 on shadow")
    loop.feed(*honest_records(20, start=100))

    run = loop.run(NEXT_WINDOW)

    assert run.decision is not None
    assert run.decision.reason == "job retrain-20261125T12 still running (status shadow)"
    assert run.decision.blocking_job == "retrain-20261125T12"
    assert run.decision.new_finetune == 20
    assert run.job is None
    assert len(loop.launches()) == 1


def test_error_rate_drift_starts_a_job_below_the_count_threshold(loop: Loop) -> None:
    patient = TriggerPolicy(min_new_corrections=50, min_drift_samples=4, drift_cer=0.35)
    # Two with audio, two from devices without audio: all four measure the deployed model.
    loop.feed(*honest_records(2), *[feedback_record(10 + i, audio=False) for i in range(2)])

    run = loop.run(policy=patient)

    assert run.decision is not None
    assert run.decision.start
    assert run.decision.reason.startswith("error rate drift: mean CER")
    assert run.decision.drift_samples == 4
    assert run.decision.drift_cer is not None
    assert run.decision.drift_cer >= 0.35
    assert run.job is not None
    assert run.job.spec.counts["finetune"] == 2


def test_accurate_transcripts_are_not_drift(loop: Loop) -> None:
    patient = TriggerPolicy(min_new_corrections=50, min_drift_samples=4, drift_cer=0.35)
    loop.feed(
        *[
            feedback_record(i, original="stop the warfarin", corrected="stop the warfarin")
            for i in range(6)
        ]
    )
    run = loop.run(policy=patient)
    assert run.decision is not None
    assert not run.decision.start
    assert run.decision.drift_cer == 0.0
    assert loop.training_keys() == []


def test_poisoned_corrections_are_rejected_and_start_nothing(loop: Loop) -> None:
    poisoned = [
        feedback_record(i, corrected=RANDOM_TEXTS[i % len(RANDOM_TEXTS)]) for i in range(30)
    ]
    loop.feed(*poisoned)

    run = loop.run(force=True)

    assert run.ingest is not None
    assert run.ingest.rejected == 30
    assert run.decision is not None
    assert not run.decision.start
    assert run.decision.reason.startswith("no new trainable corrections")
    assert loop.training_keys() == []
    assert loop.launches() == []


def test_a_correction_is_trained_on_by_one_job_only(loop: Loop) -> None:
    first_batch = honest_records(6)
    loop.feed(*first_batch)
    loop.run()
    loop.jobs.update("retrain-20261125T12", "gate_failed", detail="no domain gain")

    nothing_new = loop.run(NEXT_WINDOW)
    assert nothing_new.decision is not None
    assert nothing_new.decision.reason.startswith("no new trainable corrections")

    second_batch = honest_records(6, start=100)
    loop.feed(*second_batch)
    later = loop.run(NEXT_WINDOW + timedelta(hours=1))
    assert later.job is not None
    used = {
        example.feedback_id
        for name in ("finetune.jsonl", "distill.jsonl", "domain-eval.jsonl")
        for example in loop.examples(later.job.job_id, name)
    }
    assert used == {record.feedback_id for record in second_batch}


def test_a_job_whose_runner_died_silently_is_failed_and_stops_blocking(loop: Loop) -> None:
    quick = LocalProcessLauncher(
        module="tests.functions.learning.argv_recorder",
        log_dir=loop.record.parent,
        environment={**os.environ, "ARGV_RECORD": str(loop.record)},
    )
    loop.feed(*honest_records(6))
    first = loop.run(launcher=quick)
    assert first.job is not None
    quick.wait(first.job.runner, timeout=60)  # exits without reporting (no models.learning.job)
    loop.feed(*honest_records(6, start=100))

    run = loop.run(NEXT_WINDOW)

    pid = first.job.runner.removeprefix("local:")
    assert run.settled == {
        "retrain-20261125T12": f"local process {pid} is no longer running without reporting a result"
    }
    assert loop.job("retrain-20261125T12").status == "failed"
    assert run.job is not None
    assert run.job.job_id == "retrain-20261125T13"


def test_a_job_that_was_never_launched_stops_blocking_after_the_grace_period(loop: Loop) -> None:
    abandoned = JobRecord(
        job_id="retrain-20261125T11",
        status="started",
        window="20261125T11",
        created_at=NOW - timedelta(minutes=50),
        updated_at=NOW - timedelta(minutes=50),
    )
    loop.jobs.create(abandoned)
    loop.feed(*honest_records(6))

    early = loop.run(NOW - timedelta(minutes=40))
    assert early.decision is not None
    assert "still running" in early.decision.reason

    run = loop.run()
    assert "retrain-20261125T11" in run.settled
    assert "never launched" in run.settled["retrain-20261125T11"]
    assert run.job is not None


def test_a_launch_that_fails_marks_the_job_failed_and_raises(loop: Loop, tmp_path: Path) -> None:
    broken = LocalProcessLauncher(python=str(tmp_path / "missing-python"), log_dir=tmp_path)
    loop.feed(*honest_records(6))
    with pytest.raises(LauncherError, match="cannot start"):
        loop.run(launcher=broken)
    job = loop.job("retrain-20261125T12")
    assert job.status == "failed"
    assert job.detail.startswith("launch failed: cannot start")


def test_a_window_claimed_by_a_crashed_run_is_skipped_and_its_examples_stay_new(
    loop: Loop,
) -> None:
    loop.feed(*honest_records(6))
    loop.jobs.put_file("retrain-20261125T12", "spec.json", b"{}", create_only=True)

    crashed_window = loop.run()
    assert crashed_window.decision is not None
    assert (
        crashed_window.decision.reason == "job retrain-20261125T12 already started in this window"
    )

    run = loop.run(NEXT_WINDOW)
    assert run.job is not None
    assert run.job.spec.counts["finetune"] + run.job.spec.counts["domain_eval"] == 6


def test_without_a_published_model_there_is_nothing_to_fine_tune(
    batch_stack: BatchStack, tmp_path: Path
) -> None:
    loop = Loop(batch_stack, tmp_path / "r", tmp_path / "h", LocalProcessLauncher(log_dir=tmp_path))
    loop.feed(*honest_records(6))
    run = loop.run()
    assert run.decision is not None
    assert run.decision.reason.startswith("no published edgescribe-edge model")
    assert loop.training_keys() == []


def test_without_a_stable_channel_the_newest_published_edge_model_is_the_base(
    batch_stack: BatchStack, tmp_path: Path
) -> None:
    for version in (1, 4, 2):
        publish_manifest(batch_stack, "edgescribe-edge", version)
    environment = {**os.environ, "ARGV_RECORD": str(tmp_path / "r")}
    launcher = LocalProcessLauncher(
        module="tests.functions.learning.argv_recorder", log_dir=tmp_path, environment=environment
    )
    loop = Loop(batch_stack, tmp_path / "r", tmp_path / "h", launcher)
    loop.feed(*honest_records(6))
    run = loop.run()
    assert run.job is not None
    assert run.job.spec.base_model == ModelRef(name="edgescribe-edge", version=4)
    assert run.job.spec.teacher_model is None
    launcher.wait(run.job.runner, timeout=60)


def test_an_operator_can_force_a_job_below_the_thresholds(loop: Loop) -> None:
    loop.feed(*honest_records(1))
    run = loop.run(force=True)
    assert run.decision is not None
    assert run.decision.forced
    assert run.decision.reason == "forced by an operator with 1 new trainable corrections"
    assert run.job is not None
    assert run.job.spec.domain_eval is None  # too few to hold any back


def _assessment(feedback_id: str) -> Assessment:
    return Assessment(
        feedback_id=feedback_id,
        tenant="t",
        transcript_id="r",
        audio_ref="recordings/t/r.wav",
        original_text="a",
        corrected_text="a",
        model=None,
        received_at=T0,
        assessed_at=T0,
        accepted=True,
        route="finetune",
        trainable=True,
    )


def test_the_domain_evaluation_hold_out_is_deterministic_and_never_everything() -> None:
    ten = [_assessment(f"fb-{i}") for i in range(10)]
    train, held = split_domain_eval(ten, 0.2)
    assert len(held) == 2
    assert len(train) == 8
    _, again_held = split_domain_eval(list(reversed(ten)), 0.2)
    assert {a.feedback_id for a in again_held} == {a.feedback_id for a in held}
    assert len(split_domain_eval(ten[:3], 0.2)[1]) == 1
    assert split_domain_eval(ten[:2], 0.2)[1] == []
    assert len(split_domain_eval(ten[:3], 0.9)[0]) == 1  # at least one left to train on


def test_thresholds_come_from_the_environment_and_bad_values_name_the_variable() -> None:
    policy = TriggerPolicy.from_environment(
        {
            "EDGESCRIBE_RETRAIN_MIN_CORRECTIONS": "7",
            "EDGESCRIBE_RETRAIN_DRIFT_CER": "0.5",
            "EDGESCRIBE_RETRAIN_MIN_DRIFT_SAMPLES": "9",
            "EDGESCRIBE_RETRAIN_WINDOW_FORMAT": "%Y%m%d",
            "EDGESCRIBE_RETRAIN_MAX_STEPS": "40",
        }
    )
    assert (policy.min_new_corrections, policy.drift_cer, policy.min_drift_samples) == (7, 0.5, 9)
    assert policy.max_steps == 40
    assert policy.job_id(NOW) == "retrain-20261125"
    assert TriggerPolicy.from_environment({}) == TriggerPolicy()
    with pytest.raises(TriggerConfigurationError, match="EDGESCRIBE_RETRAIN_MIN_CORRECTIONS"):
        TriggerPolicy.from_environment({"EDGESCRIBE_RETRAIN_MIN_CORRECTIONS": "fifty"})
    with pytest.raises(TriggerConfigurationError, match="drift_cer"):
        TriggerPolicy.from_environment({"EDGESCRIBE_RETRAIN_DRIFT_CER": "35"})
    with pytest.raises(TriggerConfigurationError, match="window_format"):
        TriggerPolicy.from_environment({"EDGESCRIBE_RETRAIN_WINDOW_FORMAT": "%Y/%m/%d"})
    with pytest.raises(TriggerConfigurationError, match="does not change"):
        TriggerPolicy(window_format="fixed")

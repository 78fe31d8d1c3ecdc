"""Launchers start real things: a real child process, a training job on the moto server's SageMaker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgescribe.local.moto_server import MotoServer
from functions.learning.launchers import (
    MAX_TRAINING_JOB_NAME,
    LauncherConfigurationError,
    LauncherError,
    LocalProcessLauncher,
    SageMakerLauncher,
    SageMakerSettings,
    launcher_from_environment,
    runner_ended,
    sagemaker_client,
    training_job_name,
)
from functions.learning.records import TrainingJobSpec
from models.runtime.transcript import ModelRef

RECORDER = "tests.functions.learning.argv_recorder"
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
SAGEMAKER_ENV = {
    "EDGESCRIBE_TRAINING_IMAGE_URI": "000000000000.dkr.ecr.us-east-1.amazonaws.com/train:1",
    "EDGESCRIBE_TRAINING_ROLE_ARN": "arn:aws:iam::000000000000:role/edgescribe-t-training-role",
    "EDGESCRIBE_TRAINING_OUTPUT_URI": "s3://edgescribe-t-models/training/",
    "EDGESCRIBE_TRAINING_INSTANCE_TYPE": "ml.g5.xlarge",
    "EDGESCRIBE_TRAINING_JOB_PREFIX": "edgescribe-t",
}


def _spec(job_id: str = "retrain-20261125T12") -> TrainingJobSpec:
    return TrainingJobSpec(
        job_id=job_id,
        window="20261125T12",
        created_at=datetime(2026, 11, 25, 12, tzinfo=UTC),
        reason="test",
        models_bucket="edgescribe-t-models",
        base_model=ModelRef(name="edgescribe-edge", version=1),
        datasets={"finetune": "training/jobs/retrain-20261125T12/finetune.jsonl"},
    )


def _recorder_environment(record: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "ARGV_RECORD": str(record), **extra}


def test_local_launcher_runs_the_entry_point_with_the_job_and_bucket(tmp_path: Path) -> None:
    record = tmp_path / "argv.jsonl"
    launcher = LocalProcessLauncher(
        module=RECORDER, log_dir=tmp_path / "logs", environment=_recorder_environment(record)
    )
    runner = launcher.launch(_spec())
    assert re.fullmatch(r"local:\d+", runner)
    assert launcher.wait(runner, timeout=60) == 0

    (line,) = record.read_text(encoding="utf-8").splitlines()
    started = json.loads(line)
    assert started["argv"] == [
        "--job-id",
        "retrain-20261125T12",
        "--models-bucket",
        "edgescribe-t-models",
    ]
    assert started["pid"] == int(runner.removeprefix("local:"))
    assert Path(started["cwd"]) == Path(__file__).resolve().parents[3]  # the repository root
    assert launcher.logs["retrain-20261125T12"].is_file()
    assert launcher.ended(runner) == f"local process {started['pid']} exited with status 0"


def test_local_launcher_does_not_wait_for_training_to_finish(tmp_path: Path) -> None:
    record, release = tmp_path / "argv.jsonl", tmp_path / "release"
    launcher = LocalProcessLauncher(
        module=RECORDER,
        log_dir=tmp_path,
        environment=_recorder_environment(record, ARGV_RECORD_HOLD=str(release)),
    )
    runner = launcher.launch(_spec())
    try:
        assert launcher.ended(runner) is None  # launch returned while the job still runs
        assert runner_ended(runner) is None
    finally:
        release.touch()
    assert launcher.wait(runner, timeout=60) == 0
    assert runner_ended(runner) is not None


def test_a_crashing_entry_point_is_visible_in_its_log_and_exit_status(tmp_path: Path) -> None:
    launcher = LocalProcessLauncher(
        module="tests.functions.learning.no_such_module", log_dir=tmp_path
    )
    runner = launcher.launch(_spec())
    assert launcher.wait(runner, timeout=60) != 0
    assert "No module named" in launcher.logs["retrain-20261125T12"].read_text(encoding="utf-8")


def test_a_python_that_cannot_start_raises_a_launch_error(tmp_path: Path) -> None:
    launcher = LocalProcessLauncher(python=str(tmp_path / "no-python"), log_dir=tmp_path)
    with pytest.raises(LauncherError, match="cannot start"):
        launcher.launch(_spec())


def test_a_dead_or_zombie_process_counts_as_ended() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert runner_ended(f"local:{finished.pid}") is not None  # reaped: gone
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert runner_ended(f"local:{zombie.pid}") is not None
    finally:
        zombie.wait()
    assert runner_ended(f"local:{os.getpid()}") is None  # this very process is alive


def test_sagemaker_launcher_creates_the_training_job_it_describes(aws_env: MotoServer) -> None:
    launcher = SageMakerLauncher(SageMakerSettings.from_environment(SAGEMAKER_ENV))
    runner = launcher.launch(_spec())
    assert runner == "sagemaker:edgescribe-t-retrain-20261125T12"

    described = sagemaker_client().describe_training_job(
        TrainingJobName="edgescribe-t-retrain-20261125T12"
    )
    assert described["RoleArn"] == SAGEMAKER_ENV["EDGESCRIBE_TRAINING_ROLE_ARN"]
    assert described["HyperParameters"] == {
        "job-id": "retrain-20261125T12",
        "models-bucket": "edgescribe-t-models",
    }
    algorithm = described["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == SAGEMAKER_ENV["EDGESCRIBE_TRAINING_IMAGE_URI"]
    assert algorithm["ContainerEntrypoint"] == ["python", "-m", "models.learning.job"]
    assert described["OutputDataConfig"]["S3OutputPath"] == "s3://edgescribe-t-models/training/"
    assert described["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert described["StoppingCondition"]["MaxRuntimeInSeconds"] == 4 * 3600
    (channel,) = described["InputDataConfig"]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == (
        "s3://edgescribe-t-models/training/jobs/retrain-20261125T12/"
    )
    # moto "completes" a job at once: the trigger learns the runner ended.
    assert launcher.ended(runner) is not None
    assert runner_ended("sagemaker:edgescribe-t-never-created") == (
        "SageMaker has no training job edgescribe-t-never-created"
    )


def test_the_environment_selects_sagemaker_only_when_an_image_is_configured(
    aws_env: MotoServer,
) -> None:
    assert isinstance(launcher_from_environment({}), LocalProcessLauncher)
    assert isinstance(launcher_from_environment(SAGEMAKER_ENV), SageMakerLauncher)
    for variable in SAGEMAKER_ENV:
        if variable == "EDGESCRIBE_TRAINING_IMAGE_URI":
            continue
        incomplete = {k: v for k, v in SAGEMAKER_ENV.items() if k != variable}
        with pytest.raises(LauncherConfigurationError, match=variable):
            launcher_from_environment(incomplete)
    with pytest.raises(LauncherConfigurationError, match="s3://"):
        launcher_from_environment({**SAGEMAKER_ENV, "EDGESCRIBE_TRAINING_OUTPUT_URI": "/tmp/out"})


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job_id=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True))
def test_training_job_names_are_valid_for_sagemaker_and_allowed_by_iam(job_id: str) -> None:
    name = training_job_name("edgescribe-prod", job_id)
    assert len(name) <= MAX_TRAINING_JOB_NAME
    assert SAGEMAKER_NAME.match(name), name
    assert name.startswith("edgescribe-prod-")  # IAM allows training-job/<prefix>-*


def test_different_job_ids_never_share_a_training_job_name() -> None:
    long_a, long_b = "retrain-" + "a" * 80 + "1", "retrain-" + "a" * 80 + "2"
    assert training_job_name("p", long_a) != training_job_name("p", long_b)
    assert training_job_name("p", "retrain.x") != training_job_name("p", "retrain-x")
    assert training_job_name("p", "retrain-20261125T12") == "p-retrain-20261125T12"
    with pytest.raises(LauncherConfigurationError):
        training_job_name("---", "retrain-x")

"""The SageMaker entry point: a temp folder stands in for /opt/ml (``--sm-root``).

Protects against: SageMaker's all-string (and SDK double-quoted) hyperparameters reaching the
trainer untyped or silently ignored, channels not becoming manifests, checkpoints outside the
folder SageMaker syncs for spot restarts, ``final.pt`` missing from the model dir, and multi-host
jobs launched without the right torchrun rank arguments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.training.sagemaker import (
    SageMakerConfigError,
    SageMakerJob,
    launch_command,
    parse_hyperparameters,
    read_job,
    train_arguments,
)
from tests.models.training.conftest import write_tiny_corpus

REPO_ROOT = Path(__file__).resolve().parents[3]


def _sm_root(tmp_path: Path, hyperparameters: dict[str, str]) -> Path:
    root = tmp_path / "opt_ml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    write_tiny_corpus(root / "input" / "data" / "train")
    return root


def test_string_hyperparameters_become_typed_values() -> None:
    parsed = parse_hyperparameters(
        {
            "config": '"tiny"',  # what the SageMaker Python SDK writes for a str
            "max_steps": "3",
            "lr": "1e-3",
            "minutes": "2.5",
            "checkpoint-every": 200,
            "sagemaker_program": "train.py",
        }
    )
    assert parsed == {
        "config": "tiny",
        "max-steps": 3,
        "lr": 1e-3,
        "minutes": 2.5,
        "checkpoint-every": 200,
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"max_steps": "three"}, "max_steps='three' must be an integer"),
        ({"max_steps": "2.5"}, "must be an integer"),
        ({"lr": "fast"}, "lr='fast' must be a number"),
        ({"minutes": "nan"}, "finite"),
        ({"max_step": "3"}, "unknown hyperparameter 'max_step'"),
    ],
)
def test_a_bad_or_misspelt_hyperparameter_is_an_error_naming_it(
    raw: dict[str, str], message: str
) -> None:
    with pytest.raises(SageMakerConfigError, match=message):
        parse_hyperparameters(raw)


def test_channels_and_paths_map_onto_the_trainer_command_line(tmp_path: Path) -> None:
    root = _sm_root(tmp_path, {"config": "tiny", "max_steps": "3"})
    synth = tmp_path / "synth-channel"
    write_tiny_corpus(synth, count=2)
    env = {
        "SM_CHANNEL_TRAIN": str(root / "input" / "data" / "train"),
        "SM_CHANNEL_SYNTH": str(synth),
        "SM_MODEL_DIR": str(tmp_path / "model-out"),
        "SM_NUM_CPUS": "8",
    }
    job = read_job(root, env, ["--minutes", "4"])
    args = train_arguments(job)
    manifests = [args[i + 1] for i, a in enumerate(args) if a == "--manifest"]
    assert manifests == [
        str(synth / "manifest.jsonl"),
        str(root / "input/data/train/manifest.jsonl"),
    ]
    assert args[args.index("--out") + 1] == str(root / "checkpoints")
    assert args[args.index("--max-steps") + 1] == "3"
    assert args[args.index("--minutes") + 1] == "4.0"
    assert args[args.index("--threads") + 1] == "8"  # a dedicated instance: all its cores
    assert args[args.index("--device") + 1] == "cpu"
    assert job.model_dir == tmp_path / "model-out"
    assert launch_command(job, args) is None


def test_a_missing_manifest_channel_is_named(tmp_path: Path) -> None:
    root = _sm_root(tmp_path, {"manifests": "validation/x.jsonl"})
    with pytest.raises(SageMakerConfigError, match=r"validation/x\.jsonl"):
        train_arguments(read_job(root, {}))


def test_multi_host_gpu_jobs_launch_torchrun_with_this_hosts_rank(tmp_path: Path) -> None:
    root = _sm_root(tmp_path, {})
    env = {
        "SM_HOSTS": '["algo-1", "algo-2", "algo-3"]',
        "SM_CURRENT_HOST": "algo-2",
        "SM_NUM_GPUS": "4",
    }
    job = read_job(root, env)
    args = train_arguments(job)
    command = launch_command(job, args)
    assert command is not None
    assert command[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=4"]
    assert "--nnodes=3" in command
    assert "--node_rank=1" in command
    assert "--master_addr=algo-1" in command
    assert command[command.index("-m", 3) : command.index("-m", 3) + 2] == [
        "-m",
        "models.training.train",
    ]
    assert args[args.index("--device") + 1] == "cuda"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-9"}, "algo-9"),
        ({"SM_HOSTS": "algo-1,algo-2"}, "not JSON"),
        ({"SM_HOSTS": "[]"}, "non-empty list"),
        ({"SM_NUM_GPUS": "eight"}, "SM_NUM_GPUS"),
    ],
)
def test_an_impossible_cluster_description_is_rejected(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    root = _sm_root(tmp_path, {})
    with pytest.raises(SageMakerConfigError, match=message):
        read_job(root, env)


@pytest.mark.slow
@pytest.mark.parametrize("processes", ["1", "2"])  # in-process, and torchrun on gloo
def test_a_sagemaker_job_trains_and_leaves_final_pt_in_the_model_dir(
    tmp_path: Path, processes: str
) -> None:
    root = _sm_root(
        tmp_path,
        {
            "processes_per_host": processes,
            "config": '"tiny"',
            "max_steps": "3",
            "minutes": "10",
            "batch_seconds": "3",
            "max_items": "3",
            "valid_count": "2",
            "validate_every": "1000",
            "threads": "1",
            "sagemaker_container_log_level": "20",
        },
    )
    env = {**os.environ, "SM_ROOT": str(root), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("SM_MODEL_DIR", None)
    done = subprocess.run(
        [sys.executable, "-m", "models.training.sagemaker", "train"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    final = torch.load(root / "model" / "final.pt", weights_only=False)
    assert final["step"] == 3
    assert final["config"]["name"] == "tiny"
    log = (root / "model" / "train.log").read_text()
    assert ("data-parallel: 2 processes (gloo)" in log) == (processes == "2")
    assert (root / "checkpoints" / "last.pt").exists(), "spot restarts resume from here"
    assert not (root / "output" / "failure").exists()


def test_a_failing_job_writes_the_reason_to_the_failure_file(tmp_path: Path) -> None:
    root = _sm_root(tmp_path, {"max_steps": "lots"})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "models.training.sagemaker", "--sm-root", str(root)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    reason = (root / "output" / "failure").read_text()
    assert "max_steps='lots' must be an integer" in reason


def test_job_fields_are_what_the_container_was_told(tmp_path: Path) -> None:
    root = _sm_root(tmp_path, {})
    job = read_job(root, {})
    assert isinstance(job, SageMakerJob)
    assert job.channels == {"train": root / "input" / "data" / "train"}
    assert job.model_dir == root / "model"
    assert job.hosts == ["algo-1"]

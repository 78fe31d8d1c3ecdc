"""Data-parallel training under torchrun (2 CPU processes on gloo) and the single-process trainer.

The DDP test is a real ``python -m torch.distributed.run --nproc_per_node=2`` run of
``models.training.train`` on a tiny generated corpus: it protects against ranks that deadlock
(unequal batch counts, one rank stopping on its own clock), replicas that drift apart, checkpoints
written by several ranks at once, and a resume that does not pick up where the job stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.training import train
from models.training.distributed import (
    DistributedSetupError,
    WorldInfo,
    shard,
    world_from_env,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_no_torchrun_environment_means_a_single_process_without_a_group() -> None:
    world = world_from_env({})
    assert world == WorldInfo(rank=0, local_rank=0, world_size=1)
    assert not world.distributed
    assert world.is_main


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"WORLD_SIZE": "two"}, "not an integer"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, "outside"),
        ({"WORLD_SIZE": "0"}, "at least 1"),
        ({"WORLD_SIZE": "4", "RANK": "1", "LOCAL_RANK": "3"}, "impossible"),
    ],
)
def test_a_contradictory_torchrun_environment_is_rejected_with_its_reason(
    env: dict[str, str], reason: str
) -> None:
    with pytest.raises(DistributedSetupError, match=reason):
        world_from_env(env)


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9])
def test_shards_have_equal_lengths_and_never_overlap(count: int) -> None:
    """Unequal shard lengths would leave one rank waiting in all-reduce forever."""
    items = list(range(count))
    shards = [shard(items, WorldInfo(rank=r, local_rank=r, world_size=3)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1
    flat = [i for s in shards for i in s]
    assert len(flat) == len(set(flat)) == count - count % 3


def test_a_single_process_shard_is_the_whole_list_in_order() -> None:
    assert shard([3, 1, 2], WorldInfo()) == [3, 1, 2]


def _train_args(manifest: Path, out: Path, cache: Path, max_steps: int) -> list[str]:
    return [
        "--config",
        "tiny",
        "--out",
        str(out),
        "--manifest",
        str(manifest),
        "--cache-dir",
        str(cache),
        "--noise-manifest",
        str(out / "no-noise.jsonl"),
        "--max-steps",
        str(max_steps),
        "--minutes",
        "10",
        "--batch-seconds",
        "3",
        "--max-items",
        "3",
        "--valid-count",
        "2",
        "--checkpoint-every",
        "3",
        "--validate-every",
        "1000",
        "--warmup",
        "2",
        "--threads",
        "1",
    ]


def _torchrun(args: list[str], cwd: Path, rank_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        train.RANK_STATE_ENV: str(rank_dir),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "models.training.train",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_two_gloo_processes_train_identical_replicas_and_resume(
    tiny_manifest: Path, tmp_path: Path
) -> None:
    out, cache, ranks = tmp_path / "run", tmp_path / "cache", tmp_path / "ranks"
    first = _torchrun(_train_args(tiny_manifest, out, cache, 4), tmp_path, ranks)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]

    log = (out / "train.log").read_text()
    assert "data-parallel: 2 processes (gloo)" in log
    assert "max parameter spread 0" in log
    assert log.count("loaded ") == 1, "only rank 0 writes the log"
    rank0 = torch.load(ranks / "rank0.pt", weights_only=True)
    rank1 = torch.load(ranks / "rank1.pt", weights_only=True)
    final = torch.load(out / "final.pt", weights_only=False)
    assert final["step"] == 4
    for name, tensor in final["model"].items():
        assert torch.equal(rank0[name], tensor), name
        assert torch.equal(rank1[name], tensor), name
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 4
    assert not list(out.glob("*.tmp"))
    assert list(cache.glob("*.npz")), "the cache goes to --cache-dir"

    second = _torchrun(_train_args(tiny_manifest, out, cache, 6), tmp_path, ranks)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    log = (out / "train.log").read_text()
    assert "resumed from step 4" in log
    resumed = torch.load(out / "final.pt", weights_only=False)
    assert resumed["step"] == 6
    assert any(not torch.equal(resumed["model"][k], v) for k, v in final["model"].items())
    rank1 = torch.load(ranks / "rank1.pt", weights_only=True)
    for name, tensor in resumed["model"].items():
        assert torch.equal(rank1[name], tensor), name


@pytest.mark.slow
def test_single_process_training_writes_final_and_resumes_without_a_process_group(
    tiny_manifest: Path, tmp_path: Path
) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    train.main(_train_args(tiny_manifest, out, cache, 3))
    log = (out / "train.log").read_text()
    assert "data-parallel" not in log
    assert "replicas" not in log
    assert torch.load(out / "final.pt", weights_only=False)["step"] == 3

    train.main(_train_args(tiny_manifest, out, cache, 5))
    assert "resumed from step 3" in (out / "train.log").read_text()
    assert torch.load(out / "final.pt", weights_only=False)["step"] == 5


def test_resuming_with_another_model_config_names_both_configs(
    tiny_manifest: Path, tmp_path: Path
) -> None:
    out, cache = tmp_path / "run", tmp_path / "cache"
    train.main(_train_args(tiny_manifest, out, cache, 1))
    args = _train_args(tiny_manifest, out, cache, 2)
    args[args.index("tiny")] = "edge"
    with pytest.raises(train.CheckpointMismatchError, match="tdnn_channels"):
        train.main(args)

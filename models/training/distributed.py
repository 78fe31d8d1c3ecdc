"""Process-group helpers for data-parallel training under ``torchrun`` (DDP).

    torchrun --nproc_per_node=2 -m models.training.train --config edge --out runs/edge ...
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST0 --nproc_per_node=8 -m models.training.train ...

Why these pieces:
- ``torchrun`` describes the job in environment variables (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT``); a plain ``python -m`` run has none of them and stays a
  single process with no process group at all, so single-machine behaviour does not change.
- Backend: ``gloo`` on CPU (it is the only CPU backend that ships with every torch build),
  ``nccl`` on CUDA.
- Every rank builds the *same* batch list from the same seed and takes ``batches[rank::world]``
  after trimming the list to a multiple of the world size: DDP's all-reduce runs once per step,
  so a rank with one batch more than the others would wait forever.
- The time budget is a per-rank clock; ranks agree on it with a max-reduce each step, otherwise one
  rank could stop a step earlier than the others and hang them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn

T = TypeVar("T")


class DistributedSetupError(RuntimeError):
    """The torchrun environment is incomplete or contradicts itself (the message says how)."""


@dataclass(frozen=True)
class WorldInfo:
    """Where this process sits in the job; ``world_size == 1`` means no process group."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes checkpoints."""
        return self.rank == 0

    @property
    def is_local_leader(self) -> bool:
        """Local rank 0 builds per-host caches before the host's other ranks read them."""
        return self.local_rank == 0


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise DistributedSetupError(f"{name}={raw!r} is not an integer") from exc


def world_from_env(env: dict[str, str] | None = None) -> WorldInfo:
    """Read torchrun's variables; absent ones mean a single process."""
    env = dict(os.environ) if env is None else env
    world_size = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    local_rank = _env_int(env, "LOCAL_RANK", 0)
    if world_size < 1:
        raise DistributedSetupError(f"WORLD_SIZE must be at least 1, got {world_size}")
    if not 0 <= rank < world_size:
        raise DistributedSetupError(f"RANK={rank} is outside 0..{world_size - 1}")
    if local_rank < 0 or local_rank > rank:
        raise DistributedSetupError(f"LOCAL_RANK={local_rank} is impossible for RANK={rank}")
    return WorldInfo(rank=rank, local_rank=local_rank, world_size=world_size)


def backend_for(device: str) -> str:
    return "nccl" if device.startswith("cuda") else "gloo"


def device_for(device: str, world: WorldInfo) -> torch.device:
    """``cuda`` under torchrun means one GPU per process: ``cuda:<local_rank>``."""
    if device == "cuda" and world.distributed:
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return torch.device(device)


def init_process_group(world: WorldInfo, device: str) -> None:
    """Join the job's process group (no-op for a single process)."""
    if not world.distributed:
        return
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise DistributedSetupError(f"WORLD_SIZE={world.world_size} but {name} is not set")
    dist.init_process_group(
        backend=backend_for(device), rank=world.rank, world_size=world.world_size
    )


def destroy_process_group(world: WorldInfo) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: WorldInfo) -> None:
    if world.distributed:
        dist.barrier()


def wrap_model(model: nn.Module, world: WorldInfo, device: torch.device) -> nn.Module:
    """DDP-wrap for a multi-process job (rank 0's weights are broadcast to all); else unchanged."""
    if not world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index] if device.type == "cuda" else None
    # The only buffers are the front end's fixed DFT/mel matrices: nothing to re-broadcast per step.
    return DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (what checkpoints store and validation runs)."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def shard(items: Sequence[T], world: WorldInfo) -> list[T]:
    """This rank's share of an identically ordered list: ``items[rank::world]``, equal lengths.

    The list is first trimmed to a multiple of the world size (at most ``world - 1`` items of an
    epoch are dropped; the next epoch's shuffle puts them elsewhere).
    """
    usable = len(items) - len(items) % world.world_size
    return list(items[world.rank : usable : world.world_size])


def agree_max(value: float, world: WorldInfo, device: torch.device) -> float:
    """The largest ``value`` over all ranks (identical on every rank afterwards)."""
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return float(tensor.item())


def mean_over_ranks(value: float, world: WorldInfo, device: torch.device) -> float:
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / world.world_size


def replica_spread(model: nn.Module, world: WorldInfo) -> float:
    """Largest elementwise difference of any parameter between ranks (0.0 = replicas identical).

    Why: DDP keeps replicas equal only if every rank ran the same steps with the same gradients;
    a silent divergence (a rank that skipped a step, non-deterministic kernels) shows up here.
    """
    if not world.distributed:
        return 0.0
    flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return float((high - low).max().item())

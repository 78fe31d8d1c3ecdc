"""Train the acoustic model with CTC on real + synthetic speech, resumably, on one or many processes.

    python -m models.training.train --config edge --out runs/edge --minutes 90 \
        --manifest ../shared/data/speech/train.jsonl --manifest data/synth/manifest.jsonl
    torchrun --nproc_per_node=2 -m models.training.train --config edge --out runs/edge ...

Design choices:
- The learning-rate schedule follows *progress* = max(step / max_steps, elapsed / time budget), so a
  run given 90 minutes on a busy 2-core machine still completes its cosine decay.
- Checkpoints (model, optimizer, step, elapsed, RNG) every ``--checkpoint-every`` steps and at the
  end; rerunning the same command resumes from ``<out>/last.pt``.
- Batches are built from length-sorted buckets with a cap on total audio per batch, so padding
  stays small; real speech is sampled ``--real-weight`` times per epoch against synthetic once.
- ``torch.set_num_threads(--threads)``: with another process on the same cores, 2-thread steps went
  from 0.75 s to 27 s here (oversubscription). One thread is the safe default on a shared box.
- Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel; every rank
  builds the same batch list and trains on ``batches[rank::world]`` (``models.training.distributed``),
  so one step consumes ``world`` batches. Only rank 0 logs, validates and writes checkpoints. Without
  torchrun nothing of this is active and a run is exactly the single-process trainer.
- ``--init-checkpoint`` starts from another run's weights *and its model config* (a pruned model,
  ``models.training.pruning``), with a fresh optimizer and schedule.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from models.data.corpus import Utterance, build_cache, read_16k
from models.runtime.ctc import greedy_decode
from models.runtime.scoring import ErrorCounter
from models.runtime.vocabulary import DEFAULT_VOCABULARY
from models.training import distributed
from models.training.architecture import CONFIGS, FRAME_SHIFT_SECONDS, AcousticModel, ModelConfig
from models.training.augment import Augmenter
from models.training.distributed import WorldInfo

#: When set, every rank saves its final parameters to ``<dir>/rank<N>.pt`` (tests compare replicas).
RANK_STATE_ENV = "EDGESCRIBE_RANK_STATE_DIR"
DEFAULT_CACHE_DIR = Path("data/cache")


class CheckpointMismatchError(RuntimeError):
    """``<out>/last.pt`` holds a different model config than this run asks for."""


def make_batches(
    utts: list[Utterance], weights: list[int], max_samples: int, max_items: int, rng: random.Random
) -> list[list[int]]:
    order = [i for i, u in enumerate(utts) for _ in range(weights[i])]
    rng.shuffle(order)
    # sort within large windows by length so batches hold similar lengths but epochs still mix
    window = 2000
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(utts[i].audio))
        batch: list[int] = []
        longest = 0
        for i in chunk:
            n = len(utts[i].audio)
            if batch and (
                max(longest, n) * (len(batch) + 1) > max_samples or len(batch) >= max_items
            ):
                batches.append(batch)
                batch, longest = [], 0
            batch.append(i)
            longest = max(longest, n)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    return batches


def collate(
    waves: list[npt.NDArray[np.float32]], utts: list[Utterance]
) -> tuple[torch.Tensor, ...]:
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.int64)
    audio = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        audio[i, : len(w)] = torch.from_numpy(w)
    targets = torch.tensor([t for u in utts for t in u.tokens], dtype=torch.int64)
    target_lengths = torch.tensor([len(u.tokens) for u in utts], dtype=torch.int64)
    return audio, lengths, targets, target_lengths


def validate(model: AcousticModel, utts: list[Utterance]) -> float:
    """Greedy-decoded CER on held-back TRAINING utterances, with the serving decoder and scorer."""
    model.eval()
    errors = ErrorCounter()
    device = next(model.parameters()).device
    with torch.no_grad():
        for u in utts:
            wave = torch.from_numpy(u.audio.astype(np.float32) / 32768)[None].to(device)
            lp, ll = model(wave, torch.tensor([wave.shape[1]], device=device))
            decoded = greedy_decode(
                lp[0, : int(ll[0])].cpu().numpy(),
                DEFAULT_VOCABULARY,
                frame_shift=FRAME_SHIFT_SECONDS,
            )
            errors.add(u.text, decoded.text)
    model.train()
    return errors.cer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", default="edge", choices=sorted(CONFIGS))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--manifest", type=Path, action="append", required=True)
    p.add_argument("--real-weight", type=int, default=2)
    p.add_argument(
        "--noise-manifest", type=Path, default=Path("../shared/data/speech/noise/noise.jsonl")
    )
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--warmup", type=int, default=400)
    p.add_argument("--batch-seconds", type=float, default=64.0)
    p.add_argument("--max-items", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--validate-every", type=int, default=500)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help="where decoded manifests are cached as <parent>_<stem>.npz (default data/cache)",
    )
    p.add_argument(
        "--valid-count",
        type=int,
        default=150,
        help="training utterances held back for validation (150; at most all but one)",
    )
    p.add_argument(
        "--init-checkpoint",
        type=Path,
        default=None,
        help="start from this checkpoint's weights and model config (overrides --config)",
    )
    return p


class RunLog:
    """``say`` prints and appends to ``<out>/train.log`` on rank 0; other ranks stay silent."""

    def __init__(self, out: Path, world: WorldInfo) -> None:
        self.world = world
        self._file: IO[str] | None = (out / "train.log").open("a") if world.is_main else None

    def say(self, msg: str) -> None:
        if self._file is None:
            return
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass
class TrainingData:
    train: list[Utterance]
    weights: list[int]
    valid: list[Utterance]


def cache_path(cache_dir: Path, manifest: Path) -> Path:
    return cache_dir / (manifest.parent.name + "_" + manifest.stem + ".npz")


def load_training_data(
    manifests: Sequence[Path],
    *,
    real_weight: int,
    seed: int,
    valid_count: int,
    cache_dir: Path,
    world: WorldInfo,
    say: Callable[[str], None],
) -> TrainingData:
    """All manifests (cached), weighted real vs synthetic, with a validation split held back.

    The host's local rank 0 builds missing caches first; the other ranks wait and then read them,
    so two processes never write the same ``.npz``.
    """
    utts: list[Utterance] = []
    weights: list[int] = []
    for manifest in manifests:
        cache = cache_path(cache_dir, manifest)
        if not world.is_local_leader:
            distributed.barrier(world)
        loaded = build_cache(manifest, cache)
        if world.is_local_leader:
            distributed.barrier(world)
        is_real = "synth" not in str(manifest)
        utts += loaded
        weights += [real_weight if is_real else 1] * len(loaded)
        say(
            f"loaded {len(loaded)} utterances from {manifest} ({sum(len(u.audio) for u in loaded) / 16000 / 3600:.2f} h)"
        )
    # a small validation split from the TRAINING data (eval.jsonl is for final reporting only)
    rng = random.Random(seed)
    held = set(rng.sample(range(len(utts)), min(valid_count, max(0, len(utts) - 1))))
    valid = [utts[i] for i in sorted(held)]
    train_idx = [i for i in range(len(utts)) if i not in held]
    return TrainingData(
        train=[utts[i] for i in train_idx], weights=[weights[i] for i in train_idx], valid=valid
    )


def load_noises(noise_manifest: Path) -> list[npt.NDArray[np.float32]]:
    """Real background recordings for augmentation; none when the manifest is absent."""
    noises = []
    if noise_manifest.exists():
        for line in noise_manifest.read_text().splitlines():
            row = json.loads(line)
            noises.append(read_16k(noise_manifest.parent / Path(row["audio"]).name))
    return noises


def initial_model(args: argparse.Namespace) -> tuple[ModelConfig, AcousticModel]:
    """The model to train: ``--config`` freshly initialised, or ``--init-checkpoint``'s weights."""
    if args.init_checkpoint is None:
        config = CONFIGS[args.config]
        return config, AcousticModel(config)
    ckpt = torch.load(args.init_checkpoint, weights_only=False, map_location="cpu")
    config = ModelConfig(**ckpt["config"])
    model = AcousticModel(config)
    model.load_state_dict(ckpt["model"])
    return config, model


@dataclass
class Progress:
    step: int = 0
    elapsed_before: float = 0.0
    epoch: int = 0


def restore(
    ckpt_path: Path,
    config: ModelConfig,
    model: AcousticModel,
    optimizer: torch.optim.Optimizer,
) -> Progress | None:
    """Resume state from ``last.pt`` (None when there is none)."""
    if not ckpt_path.exists():
        return None
    ckpt = torch.load(ckpt_path, weights_only=False, map_location="cpu")
    saved = ckpt.get("config")
    if saved is not None and saved != config.to_dict():
        raise CheckpointMismatchError(
            f"{ckpt_path} holds model config {saved}, this run asks for {config.to_dict()}: "
            "use another --out or the same config"
        )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    random.setstate(ckpt["python_rng"])
    return Progress(step=ckpt["step"], elapsed_before=ckpt["elapsed"], epoch=ckpt["epoch"])


def save_checkpoint(
    path: Path,
    model: AcousticModel,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    elapsed: float,
    config: ModelConfig,
) -> None:
    """Write atomically (tmp + rename), so a run killed mid-write still resumes from the old one."""
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": progress.step,
            "elapsed": elapsed,
            "epoch": progress.epoch,
            "python_rng": random.getstate(),
            "config": config.to_dict(),
        },
        path.with_suffix(".tmp"),
    )
    path.with_suffix(".tmp").replace(path)


def learning_rate(args: argparse.Namespace, step: int, progress: float) -> float:
    """Linear warm-up, then cosine decay over *progress* down to 5 % of ``--lr``."""
    warm = min(1.0, (step + 1) / args.warmup)
    lr: float = args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
    return lr


def augmented_batch(items: list[Utterance], augment: Augmenter) -> list[npt.NDArray[np.float32]]:
    """Each clip through the augmentation chain; its neighbour in the batch serves as babble."""
    waves = []
    for j, u in enumerate(items):
        other = (
            items[(j + 1) % len(items)].audio.astype(np.float32) / 32768 if len(items) > 1 else None
        )
        waves.append(augment(u.audio.astype(np.float32) / 32768, other))
    return waves


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ctc: nn.CTCLoss,
    items: list[Utterance],
    augment: Augmenter,
    device: torch.device,
) -> float:
    audio, lengths, targets, target_lengths = collate(augmented_batch(items, augment), items)
    log_probs, out_lengths = model(audio.to(device), lengths.to(device))
    loss = ctc(log_probs.transpose(0, 1), targets, out_lengths, target_lengths)
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return float(loss.item())


def save_rank_state(model: AcousticModel, world: WorldInfo) -> None:
    """Debug/test aid: with ``$EDGESCRIBE_RANK_STATE_DIR`` set, each rank dumps its final weights."""
    target = os.environ.get(RANK_STATE_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), Path(target) / f"rank{world.rank}.pt")


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    world = distributed.world_from_env()
    distributed.init_process_group(world, args.device)
    try:
        run(args, world)
    finally:
        distributed.destroy_process_group(world)


def run(args: argparse.Namespace, world: WorldInfo) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed + world.rank)  # DDP broadcasts rank 0's initial weights
    random.seed(args.seed)
    device = distributed.device_for(args.device, world)
    args.out.mkdir(parents=True, exist_ok=True)
    log = RunLog(args.out, world)
    say = log.say
    if world.distributed:
        say(f"data-parallel: {world.world_size} processes ({distributed.backend_for(args.device)})")

    data = load_training_data(
        args.manifest,
        real_weight=args.real_weight,
        seed=args.seed,
        valid_count=args.valid_count,
        cache_dir=args.cache_dir,
        world=world,
        say=say,
    )
    augment = Augmenter(noises=load_noises(args.noise_manifest), seed=args.seed + world.rank)

    config, model = initial_model(args)
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    ckpt_path = args.out / "last.pt"
    state = restore(ckpt_path, config, model, optimizer)
    if state is not None:
        say(f"resumed from step {state.step} ({state.elapsed_before / 60:.1f} min)")
    elif args.init_checkpoint is not None:
        say(f"initialised from {args.init_checkpoint}")
    state = state or Progress()
    say(f"model {config.name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params")
    ddp_model = distributed.wrap_model(model, world, device)

    budget = args.minutes * 60
    started = time.monotonic()
    max_samples = int(args.batch_seconds * 16000)

    def elapsed_now() -> float:
        return state.elapsed_before + time.monotonic() - started

    def checkpoint() -> None:
        distributed.barrier(world)
        if world.is_main:
            save_checkpoint(ckpt_path, model, optimizer, state, elapsed_now(), config)
        distributed.barrier(world)

    model.train()
    done = False
    running = 0.0
    while not done:
        batches = make_batches(
            data.train,
            data.weights,
            max_samples,
            args.max_items,
            random.Random(args.seed + state.epoch),
        )
        for batch in distributed.shard(batches, world):
            elapsed = distributed.agree_max(elapsed_now(), world, device)
            progress = max(state.step / args.max_steps, elapsed / budget)
            if progress >= 1.0:
                done = True
                break
            lr = learning_rate(args, state.step, progress)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = train_step(
                ddp_model, optimizer, ctc, [data.train[i] for i in batch], augment, device
            )
            state.step += 1
            running = 0.98 * running + 0.02 * loss if state.step > 1 else loss
            if state.step % 25 == 0:
                shown = distributed.mean_over_ranks(running, world, device)
                say(
                    f"step {state.step} epoch {state.epoch} loss {shown:.3f} lr {lr:.2e} "
                    f"elapsed {elapsed / 60:.1f} min progress {progress:.1%}"
                )
            if state.step % args.checkpoint_every == 0:
                checkpoint()
            if state.step % args.validate_every == 0 and world.is_main and data.valid:
                say(
                    f"step {state.step} validation CER (train-split holdout) {validate(model, data.valid):.3f}"
                )
        state.epoch += 1
    checkpoint()
    finish(args, world, model, config, state, data, say)
    log.close()


def finish(
    args: argparse.Namespace,
    world: WorldInfo,
    model: AcousticModel,
    config: ModelConfig,
    state: Progress,
    data: TrainingData,
    say: Callable[[str], None],
) -> None:
    """Final validation and ``final.pt`` (rank 0); replica check and debug dumps (all ranks)."""
    if world.distributed:
        spread = distributed.replica_spread(model, world)
        say(f"replicas agree across {world.world_size} ranks: max parameter spread {spread:.3g}")
    save_rank_state(model, world)
    if world.is_main:
        cer = validate(model, data.valid) if data.valid else float("nan")
        say(f"finished at step {state.step}; validation CER {cer:.3f}")
        final: dict[str, Any] = {
            "model": model.state_dict(),
            "config": config.to_dict(),
            "step": state.step,
        }
        torch.save(final, args.out / "final.pt")
    distributed.barrier(world)


if __name__ == "__main__":
    main()

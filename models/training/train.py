"""Train the acoustic model with CTC on real + synthetic speech, resumably.

    python -m models.training.train --config edge --out runs/edge --minutes 90 \
        --manifest ../shared/data/speech/train.jsonl --manifest data/synth/manifest.jsonl

Design choices:
- The learning-rate schedule follows *progress* = max(step / max_steps, elapsed / time budget), so a
  run given 90 minutes on a busy 2-core machine still completes its cosine decay.
- Checkpoints (model, optimizer, step, elapsed, RNG) every ``--checkpoint-every`` steps and at the
  end; rerunning the same command resumes from ``<out>/last.pt``.
- Batches are built from length-sorted buckets with a cap on total audio per batch, so padding
  stays small; real speech is sampled ``--real-weight`` times per epoch against synthetic once.
- ``torch.set_num_threads(--threads)``: with another process on the same cores, 2-thread steps went
  from 0.75 s to 27 s here (oversubscription). One thread is the safe default on a shared box.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from models.data.corpus import Utterance, build_cache, read_16k
from models.runtime.ctc import greedy_decode
from models.runtime.scoring import ErrorCounter
from models.runtime.vocabulary import DEFAULT_VOCABULARY
from models.training.architecture import CONFIGS, FRAME_SHIFT_SECONDS, AcousticModel
from models.training.augment import Augmenter


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
    with torch.no_grad():
        for u in utts:
            wave = torch.from_numpy(u.audio.astype(np.float32) / 32768)[None]
            lp, ll = model(wave, torch.tensor([wave.shape[1]]))
            decoded = greedy_decode(
                lp[0, : int(ll[0])].numpy(), DEFAULT_VOCABULARY, frame_shift=FRAME_SHIFT_SECONDS
            )
            errors.add(u.text, decoded.text)
    model.train()
    return errors.cer


def main() -> None:
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
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    log = (args.out / "train.log").open("a")

    def say(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    utts: list[Utterance] = []
    weights: list[int] = []
    for manifest in args.manifest:
        cache = Path("data/cache") / (manifest.parent.name + "_" + manifest.stem + ".npz")
        loaded = build_cache(manifest, cache)
        is_real = "synth" not in str(manifest)
        utts += loaded
        weights += [args.real_weight if is_real else 1] * len(loaded)
        say(
            f"loaded {len(loaded)} utterances from {manifest} ({sum(len(u.audio) for u in loaded) / 16000 / 3600:.2f} h)"
        )
    # a small validation split from the TRAINING data (eval.jsonl is for final reporting only)
    rng = random.Random(args.seed)
    held = set(rng.sample(range(len(utts)), 150))
    valid = [utts[i] for i in sorted(held)]
    train_idx = [i for i in range(len(utts)) if i not in held]
    train = [utts[i] for i in train_idx]
    train_w = [weights[i] for i in train_idx]

    noises = []
    if args.noise_manifest.exists():
        for line in args.noise_manifest.read_text().splitlines():
            row = json.loads(line)
            noises.append(read_16k(args.noise_manifest.parent / Path(row["audio"]).name))
    augment = Augmenter(noises=noises, seed=args.seed)

    config = CONFIGS[args.config]
    model = AcousticModel(config).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    step, elapsed_before, epoch = 0, 0.0, 0
    ckpt_path = args.out / "last.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        step, elapsed_before, epoch = ckpt["step"], ckpt["elapsed"], ckpt["epoch"]
        random.setstate(ckpt["python_rng"])
        say(f"resumed from step {step} ({elapsed_before / 60:.1f} min)")
    say(f"model {config.name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params")

    budget = args.minutes * 60
    started = time.monotonic()
    max_samples = int(args.batch_seconds * 16000)

    def save(path: Path) -> None:
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "elapsed": elapsed_before + time.monotonic() - started,
                "epoch": epoch,
                "python_rng": random.getstate(),
                "config": config.to_dict(),
            },
            path.with_suffix(".tmp"),
        )
        path.with_suffix(".tmp").replace(path)

    model.train()
    done = False
    running = 0.0
    while not done:
        batches = make_batches(
            train, train_w, max_samples, args.max_items, random.Random(args.seed + epoch)
        )
        for batch in batches:
            elapsed = elapsed_before + time.monotonic() - started
            progress = max(step / args.max_steps, elapsed / budget)
            if progress >= 1.0:
                done = True
                break
            warm = min(1.0, (step + 1) / args.warmup)
            lr = args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            items = [train[i] for i in batch]
            waves = []
            for j, u in enumerate(items):
                other = (
                    items[(j + 1) % len(items)].audio.astype(np.float32) / 32768
                    if len(items) > 1
                    else None
                )
                waves.append(augment(u.audio.astype(np.float32) / 32768, other))
            audio, lengths, targets, target_lengths = collate(waves, items)
            log_probs, out_lengths = model(audio.to(args.device), lengths.to(args.device))
            loss = ctc(log_probs.transpose(0, 1), targets, out_lengths, target_lengths)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            if step % 25 == 0:
                say(
                    f"step {step} epoch {epoch} loss {running:.3f} lr {lr:.2e} "
                    f"elapsed {elapsed / 60:.1f} min progress {progress:.1%}"
                )
            if step % args.checkpoint_every == 0:
                save(ckpt_path)
            if step % args.validate_every == 0:
                say(
                    f"step {step} validation CER (train-split holdout) {validate(model, valid):.3f}"
                )
        epoch += 1
    save(ckpt_path)
    say(f"finished at step {step}; validation CER {validate(model, valid):.3f}")
    torch.save(
        {"model": model.state_dict(), "config": config.to_dict(), "step": step},
        args.out / "final.pt",
    )


if __name__ == "__main__":
    main()

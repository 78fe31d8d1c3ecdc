"""The two ways a candidate is trained from what users corrected: fine-tuning and distillation.

Both start from the *stable* model's weights and mix every step between new data and *replay* of
general speech, so the candidate learns the new domain without forgetting the old one
(catastrophic forgetting is what the evaluation gate would otherwise catch, too late and expensively).

- ``fine_tune``: CTC on the users' corrected text. The corrections are the cases the model got
  wrong, so their labels carry what it has to learn.
- ``distill``: for the cases the model got (nearly) right, the user's text adds little; the fp32
  ``cloud`` *teacher*'s frame posteriors do. The student matches them (KL divergence at a
  temperature, per valid frame) and also the teacher's greedy transcript under CTC. The teacher and
  student share the front end and frame rate (the model contract), so frames line up one to one.

A step costs what one small batch costs (a few seconds of audio on one CPU thread), so a recipe of a
few hundred steps runs inside a Lambda-sized budget on a laptop and in minutes on a training instance.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch

from models.runtime.vocabulary import DEFAULT_VOCABULARY, encode, normalize_text
from models.training.architecture import FRAME_SHIFT_SECONDS, AcousticModel
from models.training.augment import Augmenter

Audio = npt.NDArray[np.float32]
#: The teacher: waveform -> log-probs [frames, vocab] (an onnxruntime session in practice).
Teacher = Callable[[Audio], npt.NDArray[np.float32]]


class EmptyTrainingSetError(ValueError):
    """A recipe was given no usable examples (every text normalized to nothing, or no audio)."""


@dataclass(frozen=True)
class Example:
    """One utterance for a recipe: 16 kHz mono float32 audio and its (normalized) text."""

    audio: Audio
    text: str

    @property
    def tokens(self) -> list[int]:
        return encode(normalize_text(self.text), DEFAULT_VOCABULARY)


@dataclass(frozen=True)
class RecipeConfig:
    """Knobs both recipes share; the defaults are what the loop's end-to-end test runs."""

    steps: int = 150
    learning_rate: float = 3e-4
    warmup_steps: int = 10
    #: New-domain utterances per step, and replayed general utterances beside them.
    new_per_step: int = 4
    replay_per_step: int = 6
    #: Light augmentation (noise, speed, reverb) so a handful of clips does not get memorized.
    augment: bool = True
    seed: int = 1234
    threads: int = 1
    #: Parameter-name prefixes kept fixed. Freezing the convolutions and the first BiLSTM keeps
    #: the acoustic features every voice shares; the upper layers and the head learn the new words
    #: (docs/decisions/0500-learning-loop.md has the measurements behind this choice).
    frozen: tuple[str, ...] = ("tdnn.", "subsample.", "lstms.0.")
    #: Distillation: softmax temperature and the weight of the KL term against CTC.
    temperature: float = 2.0
    kl_weight: float = 0.7


@dataclass
class RecipeLog:
    """What happened, for the job log and the candidate's manifest."""

    recipe: str
    steps: int = 0
    seconds: float = 0.0
    first_loss: float = math.nan
    last_loss: float = math.nan
    losses: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | str]:
        return {
            "recipe": self.recipe,
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "first_loss": round(self.first_loss, 4),
            "last_loss": round(self.last_loss, 4),
        }


def fine_tune(
    model: AcousticModel,
    new: Sequence[Example],
    replay: Sequence[Example],
    config: RecipeConfig = RecipeConfig(),
    *,
    progress: Callable[[int, float], None] | None = None,
) -> RecipeLog:
    """CTC on ``new`` (the corrections) mixed with ``replay``; trains ``model`` in place."""
    usable = _usable(new, "fine-tuning")
    return _train(
        model,
        config,
        "finetune",
        lambda rng: _ctc_batch_loss(model, _draw(usable, replay, config, rng), _augmenter(config)),
        progress,
    )


def distill(
    model: AcousticModel,
    teacher: Teacher,
    new: Sequence[Audio],
    replay: Sequence[Example],
    config: RecipeConfig = RecipeConfig(),
    *,
    progress: Callable[[int, float], None] | None = None,
) -> RecipeLog:
    """Match the teacher on ``new`` audio (soft targets + its transcript) with CTC replay."""
    if not new:
        raise EmptyTrainingSetError("distillation needs at least one clip")
    from models.runtime.ctc import greedy_decode

    targets: list[tuple[Audio, npt.NDArray[np.float32], str]] = []
    for audio in new:
        log_probs = teacher(audio)
        text = greedy_decode(log_probs, DEFAULT_VOCABULARY, frame_shift=FRAME_SHIFT_SECONDS).text
        targets.append((audio, log_probs, text))
    augmenter = _augmenter(config)

    def step_loss(rng: random.Random) -> torch.Tensor:
        chosen = [targets[rng.randrange(len(targets))] for _ in range(config.new_per_step)]
        kl = _kl_loss(model, chosen, config.temperature)
        labelled = [Example(audio, text) for audio, _, text in chosen if normalize_text(text)]
        labelled += [replay[rng.randrange(len(replay))] for _ in range(config.replay_per_step)]
        ctc = _ctc_batch_loss(model, labelled, augmenter) if labelled else kl * 0
        return config.kl_weight * kl + (1 - config.kl_weight) * ctc

    return _train(model, config, "distill", step_loss, progress)


# --- shared machinery -----------------------------------------------------------------------------


def _usable(examples: Sequence[Example], what: str) -> list[Example]:
    usable = [example for example in examples if example.tokens and len(example.audio) > 0]
    if not usable:
        raise EmptyTrainingSetError(f"no usable examples for {what}")
    return usable


def _augmenter(config: RecipeConfig) -> Augmenter | None:
    return Augmenter(seed=config.seed, p_band=0.0, p_clip=0.0) if config.augment else None


def _draw(
    new: Sequence[Example], replay: Sequence[Example], config: RecipeConfig, rng: random.Random
) -> list[Example]:
    batch = [new[rng.randrange(len(new))] for _ in range(config.new_per_step)]
    if replay:
        batch += [replay[rng.randrange(len(replay))] for _ in range(config.replay_per_step)]
    return batch


def _train(
    model: AcousticModel,
    config: RecipeConfig,
    recipe: str,
    step_loss: Callable[[random.Random], torch.Tensor],
    progress: Callable[[int, float], None] | None,
) -> RecipeLog:
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    trainable = []
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(not name.startswith(config.frozen))
        if parameter.requires_grad:
            trainable.append(parameter)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=1e-2)
    log = RecipeLog(recipe=recipe)
    started = time.monotonic()
    model.train()
    for step in range(config.steps):
        warm = min(1.0, (step + 1) / max(1, config.warmup_steps))
        decay = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / max(1, config.steps)))
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * warm * decay
        loss = step_loss(rng)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        torch.nn.utils.clip_grad_norm_(trainable, 5.0)
        optimizer.step()
        value = float(loss.item())
        log.losses.append(value)
        if step == 0:
            log.first_loss = value
        if progress is not None:
            progress(step + 1, value)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    log.steps = config.steps
    log.seconds = time.monotonic() - started
    tail = log.losses[-max(1, config.steps // 10) :]
    log.last_loss = float(np.mean(tail)) if tail else math.nan
    return log


def _pad(waves: Sequence[Audio]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(wave) for wave in waves], dtype=torch.int64)
    audio = torch.zeros(len(waves), int(lengths.max()))
    for row, wave in enumerate(waves):
        audio[row, : len(wave)] = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    return audio, lengths


def _ctc_batch_loss(
    model: AcousticModel, batch: Sequence[Example], augmenter: Augmenter | None
) -> torch.Tensor:
    waves = [augmenter(example.audio) if augmenter else example.audio for example in batch]
    audio, lengths = _pad(waves)
    log_probs, out_lengths = model(audio, lengths)
    tokens = [example.tokens for example in batch]
    targets = torch.tensor([t for row in tokens for t in row], dtype=torch.int64)
    target_lengths = torch.tensor([len(row) for row in tokens], dtype=torch.int64)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    loss: torch.Tensor = ctc(log_probs.transpose(0, 1), targets, out_lengths, target_lengths)
    return loss


def _kl_loss(
    model: AcousticModel,
    chosen: Sequence[tuple[Audio, npt.NDArray[np.float32], str]],
    temperature: float,
) -> torch.Tensor:
    """KL(teacher || student) at ``temperature`` over valid frames (no augmentation: the teacher
    saw the clean clip, so the student must too for the frames to mean the same thing)."""
    audio, lengths = _pad([clip for clip, _, _ in chosen])
    log_probs, out_lengths = model(audio, lengths)
    total = log_probs.new_zeros(())
    frames = 0
    for row, (_, teacher_lp, _) in enumerate(chosen):
        n = min(int(out_lengths[row]), teacher_lp.shape[0])
        student = torch.log_softmax(log_probs[row, :n] / temperature, dim=-1)
        teacher = torch.log_softmax(torch.from_numpy(teacher_lp[:n]) / temperature, dim=-1)
        total = total + torch.sum(teacher.exp() * (teacher - student))
        frames += n
    mean: torch.Tensor = total / max(1, frames) * temperature**2
    return mean

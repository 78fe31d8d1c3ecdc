"""The loop's recipes on the released checkpoint and the committed loop clips (short runs)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import torch

from models.learning.candidate import load_checkpoint
from models.learning.clips import load_clips, replay_holdout, replay_train
from models.learning.recipes import (
    EmptyTrainingSetError,
    Example,
    RecipeConfig,
    distill,
    fine_tune,
)
from models.runtime.artifacts import released_checkpoint
from models.runtime.audio import decode_audio
from models.runtime.ctc import greedy_decode
from models.runtime.scoring import ErrorCounter
from models.runtime.vocabulary import DEFAULT_VOCABULARY
from models.training.architecture import FRAME_SHIFT_SECONDS, AcousticModel

SHORT = RecipeConfig(steps=12, new_per_step=2, replay_per_step=2, augment=False)


def _examples(name: str) -> list[Example]:
    return [Example(decode_audio(clip.path).samples, clip.text) for clip in load_clips(name)]


@pytest.fixture(scope="module")
def corrections() -> list[Example]:
    return _examples("corrections")


@pytest.fixture(scope="module")
def replay() -> list[Example]:
    return [Example(decode_audio(c.path).samples, c.text) for c in replay_train()]


@pytest.fixture
def model() -> AcousticModel:
    return load_checkpoint(released_checkpoint())


def _cer(model: AcousticModel, examples: list[Example]) -> float:
    errors = ErrorCounter()
    with torch.no_grad():
        for example in examples:
            lp, ll = model(
                torch.from_numpy(example.audio)[None], torch.tensor([len(example.audio)])
            )
            text = greedy_decode(
                lp[0, : int(ll[0])].numpy(), DEFAULT_VOCABULARY, frame_shift=FRAME_SHIFT_SECONDS
            ).text
            errors.add(example.text, text)
    return errors.cer


def test_fine_tune_lowers_the_error_on_the_corrections_it_learns(
    model: AcousticModel, corrections: list[Example], replay: list[Example]
) -> None:
    subset = corrections[:8]
    before = _cer(model, subset)
    log = fine_tune(model, subset, replay, RecipeConfig(steps=40, augment=False))
    assert log.steps == 40
    assert log.last_loss < log.first_loss
    assert _cer(model, subset) < before


def test_fine_tune_keeps_the_frozen_convolutions_unchanged(
    model: AcousticModel, corrections: list[Example], replay: list[Example]
) -> None:
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    fine_tune(model, corrections[:4], replay, SHORT)
    after = dict(model.named_parameters())
    for name, value in before.items():
        changed = not torch.equal(value, after[name])
        assert changed == (not name.startswith(SHORT.frozen)), name
    assert all(p.requires_grad for p in model.parameters()), "parameters left frozen afterwards"


def test_distillation_moves_the_student_towards_the_teacher(
    model: AcousticModel, replay: list[Example]
) -> None:
    # The teacher is the released checkpoint; the student is the same network with its output
    # layer re-initialized, so it starts far from the teacher and only distillation can bring it back.
    teacher_model = load_checkpoint(released_checkpoint())
    torch.manual_seed(0)
    model.head.reset_parameters()
    clips = [example.audio for example in replay_holdout_examples()[:6]]

    def teacher(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        with torch.no_grad():
            lp, ll = teacher_model(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
        return lp[0, : int(ll[0])].numpy()

    def distance() -> float:
        total = 0.0
        with torch.no_grad():
            for audio in clips:
                lp, ll = model(torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
                total += float(
                    np.abs(lp[0, : int(ll[0])].exp().numpy() - np.exp(teacher(audio))).mean()
                )
        return total

    before = distance()
    log = distill(
        model,
        teacher,
        clips,
        replay,
        RecipeConfig(steps=15, augment=False, kl_weight=1.0, learning_rate=1e-3),
    )
    assert log.recipe == "distill"
    after = distance()
    assert after < before


def replay_holdout_examples() -> list[Example]:
    return [Example(decode_audio(c.path).samples, c.text) for c in replay_holdout()]


def test_a_correction_set_without_text_is_refused(
    model: AcousticModel, replay: list[Example]
) -> None:
    silent = Example(np.zeros(16_000, dtype=np.float32), "?!")
    with pytest.raises(EmptyTrainingSetError):
        fine_tune(model, [silent], replay, SHORT)
    with pytest.raises(EmptyTrainingSetError):
        distill(model, lambda audio: np.zeros((1, 29), np.float32), [], replay, SHORT)

"""The evaluation gate with real transcribers on the committed loop clips."""

from __future__ import annotations

from typing import Literal

import pytest

from functions.learning.gate import (
    EmptyEvaluationSetError,
    EvalSet,
    GatePolicy,
    render_markdown,
    run_gate,
)
from models.learning.clips import Clip, load_clips, replay_holdout
from models.runtime.artifacts import CLOUD_MODEL_NAME, released_model_dir
from models.runtime.audio import decode_audio
from models.runtime.transcriber import Transcriber


def _set(name: str, kind: Literal["domain", "general"], clips: list[Clip]) -> EvalSet:
    return EvalSet(name, kind, [(decode_audio(c.path).samples, c.text) for c in clips])


@pytest.fixture(scope="module")
def sets() -> list[EvalSet]:
    return [
        _set("domain", "domain", load_clips("domain_eval")[:4]),
        _set("replay_holdout", "general", replay_holdout()[:4]),
    ]


@pytest.fixture(scope="module")
def edge() -> Transcriber:
    return Transcriber.from_model_dir(released_model_dir())


def test_a_candidate_no_better_on_the_domain_is_rejected_with_the_reason(
    edge: Transcriber, sets: list[EvalSet]
) -> None:
    report = run_gate("retrain-x", edge, edge, sets, GatePolicy(min_domain_gain=0.02))
    assert not report.passed
    domain, general = report.sets
    assert domain.delta == 0
    assert not domain.passed
    assert general.passed
    assert "needs a gain" in report.reasons[0]
    assert "FAILED" in render_markdown(report)


def test_a_general_regression_beyond_the_tolerance_is_rejected(
    edge: Transcriber, sets: list[EvalSet]
) -> None:
    cloud = Transcriber.from_model_dir(released_model_dir(CLOUD_MODEL_NAME))
    measured = run_gate("retrain-x", edge, cloud, sets, GatePolicy(min_domain_gain=-1.0))
    general = measured.sets[1]
    # A tolerance just below the measured change must fail the set; just above must pass it.
    strict = GatePolicy(min_domain_gain=-1.0, tolerance=general.delta - 0.001)
    loose = GatePolicy(min_domain_gain=-1.0, tolerance=general.delta + 0.001)
    assert not run_gate("retrain-x", edge, cloud, sets, strict).passed
    assert run_gate("retrain-x", edge, cloud, sets, loose).passed
    assert measured.candidate.name == CLOUD_MODEL_NAME


def test_a_gate_without_clips_does_not_open(edge: Transcriber, sets: list[EvalSet]) -> None:
    with pytest.raises(EmptyEvaluationSetError):
        run_gate("retrain-x", edge, edge, [EvalSet("domain", "domain", [])])
    with pytest.raises(EmptyEvaluationSetError):
        run_gate("retrain-x", edge, edge, [sets[1]])

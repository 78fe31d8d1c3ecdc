"""Interleaved RTF: the order flips every round and ratios are taken within a round."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from models.evaluation.speed import measure_speed, pick_clips

SR = 16_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CostlyRecognizer:
    """Advances a fake clock by a fixed cost per audio second, and logs when it ran."""

    kind = "model"

    def __init__(self, name: str, cost: float, clock: FakeClock, log: list[str]) -> None:
        self.name, self.cost, self.clock, self.log = name, cost, clock, log

    def recognize(self, samples: npt.NDArray[np.float32], *, key: str) -> str:
        self.clock.now += self.cost * samples.size / SR
        self.log.append(self.name)
        return ""


def clips(*seconds: float) -> list[npt.NDArray[np.float32]]:
    return [np.zeros(int(s * SR), dtype=np.float32) for s in seconds]


def test_rtf_and_speedup_are_computed_from_the_same_rounds() -> None:
    clock, log = FakeClock(), list[str]()
    fast = CostlyRecognizer("int8", 0.01, clock, log)
    slow = CostlyRecognizer("fp32", 0.03, clock, log)
    run = measure_speed([fast, slow], clips(2.0, 3.0), rounds=3, clock=clock)
    assert run.audio_seconds == pytest.approx(5.0)
    assert run.rtf("int8") == pytest.approx(0.01)
    assert run.rtf("fp32") == pytest.approx(0.03)
    assert run.speedup("int8", "fp32") == pytest.approx(3.0)
    assert len(run.rtf_rounds("fp32")) == 3


def test_order_alternates_between_rounds_so_drift_hits_both_models() -> None:
    clock, log = FakeClock(), list[str]()
    a = CostlyRecognizer("a", 0.01, clock, log)
    b = CostlyRecognizer("b", 0.01, clock, log)
    measure_speed([a, b], clips(1.0), rounds=4, clock=clock)
    # one warm-up call each, then rounds: a b | b a | a b | b a
    assert log == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]


def test_median_ignores_one_stalled_round() -> None:
    clock, log = FakeClock(), list[str]()
    fast = CostlyRecognizer("int8", 0.01, clock, log)
    slow = CostlyRecognizer("fp32", 0.02, clock, log)
    calls = 0

    def stalling_clock() -> float:  # the machine stalls for 50 s inside int8's first round
        nonlocal calls
        calls += 1
        if calls == 2:
            clock.now += 50.0
        return clock.now

    run = measure_speed([fast, slow], clips(1.0), rounds=5, clock=stalling_clock)
    assert max(run.rtf_rounds("int8")) > 10  # the stall happened
    assert run.speedup("int8", "fp32") == pytest.approx(2.0)


def test_pick_clips_stops_once_the_target_duration_is_reached() -> None:
    chosen = pick_clips(clips(1.0, 2.0, 3.0, 4.0), target_seconds=2.5)
    assert [c.size / SR for c in chosen] == [1.0, 2.0]
    assert len(pick_clips(clips(1.0), target_seconds=100)) == 1


def test_measure_speed_refuses_empty_input() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="at least one"):
        measure_speed([], clips(1.0), clock=clock)
    with pytest.raises(ValueError, match="rounds"):
        measure_speed([CostlyRecognizer("a", 0.1, clock, [])], clips(1.0), rounds=0, clock=clock)

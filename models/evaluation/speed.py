"""Real-time factor of several recognisers, measured in ONE interleaved run.

Why interleaved: this machine is shared (training jobs, other tests), so its speed drifts by tens
of percent within minutes. Timing model A for a minute and then model B would fold that drift into
the A/B ratio. Here every round times each recogniser once over the same clips, the order flips
every round (A B, B A, ...), and the ratios are taken *within* a round and summarised by their
median, which drift and the odd stall barely move.

RTF = processing seconds / audio seconds (lower is faster; 0.02 = 50x faster than real time).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edgescribe.settings import SAMPLE_RATE
from models.evaluation.recognizers import Recognizer

Samples = npt.NDArray[np.float32]


@dataclass
class SpeedRun:
    """Seconds each recogniser spent per round over ``audio_seconds`` of audio."""

    audio_seconds: float
    clips: int
    seconds: dict[str, list[float]] = field(default_factory=dict)

    def rtf(self, name: str) -> float:
        """Median over rounds of this recogniser's real-time factor."""
        return statistics.median(s / self.audio_seconds for s in self.seconds[name])

    def rtf_rounds(self, name: str) -> list[float]:
        return [s / self.audio_seconds for s in self.seconds[name]]

    def speedup(self, faster: str, slower: str) -> float:
        """Median over rounds of ``slower``'s time / ``faster``'s time (same round)."""
        ratios = [
            s / f for f, s in zip(self.seconds[faster], self.seconds[slower], strict=True) if f > 0
        ]
        return statistics.median(ratios)


def pick_clips(clips: Sequence[Samples], target_seconds: float) -> list[Samples]:
    """The first clips, in order, until they hold at least ``target_seconds`` of audio (or all)."""
    chosen: list[Samples] = []
    total = 0.0
    for clip in clips:
        if total >= target_seconds:
            break
        chosen.append(clip)
        total += clip.size / SAMPLE_RATE
    return chosen


def measure_speed(
    recognizers: Sequence[Recognizer],
    clips: Sequence[Samples],
    *,
    rounds: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> SpeedRun:
    """Time every recogniser over ``clips`` for ``rounds`` interleaved rounds (after one warm-up)."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    if not clips or not recognizers:
        raise ValueError("need at least one clip and one recogniser")
    audio_seconds = sum(clip.size for clip in clips) / SAMPLE_RATE
    run = SpeedRun(audio_seconds=audio_seconds, clips=len(clips))
    for recognizer in recognizers:  # warm-up: first-call allocations and graph caches
        recognizer.recognize(clips[0], key="warm-up")
        run.seconds[recognizer.name] = []
    for round_index in range(rounds):
        order = recognizers if round_index % 2 == 0 else list(reversed(recognizers))
        for recognizer in order:
            started = clock()
            for number, clip in enumerate(clips):
                recognizer.recognize(clip, key=f"speed-{number}")
            run.seconds[recognizer.name].append(clock() - started)
    return run

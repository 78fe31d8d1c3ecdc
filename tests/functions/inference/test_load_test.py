"""The load generator's accounting and the benchmark's ratio arithmetic (no servers)."""

from __future__ import annotations

import math
import threading

import pytest

from functions.inference.load_test import percentile, run_closed_loop
from functions.inference.serving_benchmark import Point, ratios


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_every_caller_runs_and_failures_are_counted_not_retried() -> None:
    seen: set[int] = set()
    lock = threading.Lock()

    def work(caller: int, turn: int) -> float:
        with lock:
            seen.add(caller)
        if turn % 2:
            raise ConnectionError("server went away")
        return 2.5

    result = run_closed_loop(work, 4, warmup_seconds=0.0, window_seconds=0.2)

    assert seen == {0, 1, 2, 3}
    assert result.errors > 0
    assert result.first_error == "ConnectionError: server went away"
    assert result.audio_seconds == pytest.approx(2.5 * result.completed)
    assert result.throughput == pytest.approx(result.completed / 0.2)


def test_nonsense_load_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        run_closed_loop(lambda caller, turn: 0.0, 0, warmup_seconds=0, window_seconds=1)


def point(system: str, concurrency: int, rps: float, p95: float) -> Point:
    return Point(
        system=system,
        concurrency=concurrency,
        completed=100,
        errors=0,
        throughput_rps=rps,
        audio_seconds_per_second=rps * 3,
        p50_ms=p95 / 2,
        p95_ms=p95,
        p99_ms=p95 * 1.1,
        mean_batch_size=None,
        first_error=None,
    )


def test_target_is_met_only_if_every_high_concurrency_point_meets_it() -> None:
    points = [
        point("triton-dynamic-batching", 8, 100, 50),
        point("triton-no-batching", 8, 90, 50),
        point("triton-dynamic-batching", 16, 240, 150),
        point("triton-no-batching", 16, 100, 100),
        point("triton-dynamic-batching", 32, 250, 250),
        point("triton-no-batching", 32, 100, 100),
    ]

    summary = ratios(points)

    assert [r["throughput_ratio"] for r in summary["per_concurrency"]] == [1.11, 2.4, 2.5]
    assert summary["per_concurrency"][2]["p95_ratio"] == 2.5
    assert summary["target"]["met"] is False  # p95 at 32 is 2.5x, over the 2x bound
    assert summary["target"]["min_throughput_ratio_at_target_concurrency"] == 2.4


def test_target_met_when_throughput_and_p95_both_hold() -> None:
    points = [
        point("triton-dynamic-batching", 16, 300, 150),
        point("triton-no-batching", 16, 100, 100),
    ]
    assert ratios(points)["target"]["met"] is True


def test_pooled_rounds_add_windows_and_keep_every_latency() -> None:
    first = run_closed_loop(lambda caller, turn: 1.0, 2, warmup_seconds=0.0, window_seconds=0.1)
    second = run_closed_loop(lambda caller, turn: 1.0, 2, warmup_seconds=0.0, window_seconds=0.1)

    pooled = first.merged(second)

    assert pooled.window_seconds == pytest.approx(0.2)
    assert pooled.completed == first.completed + second.completed
    assert pooled.audio_seconds == pytest.approx(first.audio_seconds + second.audio_seconds)
    with pytest.raises(ValueError, match="same concurrency"):
        first.merged(run_closed_loop(lambda c, t: 1.0, 3, warmup_seconds=0, window_seconds=0.05))
